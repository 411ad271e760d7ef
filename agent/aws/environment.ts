import { CLOUDSNAP_KMS_KEY_VARIABLE } from "../../core/cloud/kms-client.js";
import { CLOUDSNAP_BUCKET_VARIABLE } from "../../core/cloud/s3-client.js";

/** The key agents of one cluster authenticate each other with; without it the agent serves no replicas. */
export const CLUSTER_SECRET_VARIABLE = "STRATA_CLUSTER_SECRET";
/**
 * The instance the agent runs on, recorded so EC2's events about it reach this node's workflows.
 * Set by the local cloud for its instances; in AWS the agent reads it from the instance metadata
 * when it is unset.
 */
export const INSTANCE_ID_VARIABLE = "STRATA_INSTANCE_ID";
/** The cluster whose drives (tagged `strata:cluster=<name>`) an agent with --ec2-drives looks for. */
export const CLUSTER_NAME_VARIABLE = "STRATA_CLUSTER_NAME";
/** Where the links from EBS volume ids to NVMe devices are; elsewhere only in tests. */
export const DISK_BY_ID_VARIABLE = "STRATA_DISK_BY_ID_DIR";
/** The SDK's region variable: every AWS client of the agent (DynamoDB, S3, KMS, EC2) takes it. */
export const REGION_VARIABLE = "AWS_REGION";

/**
 * Every variable the DaemonSet gives an agent on EKS, each named by the module that reads it, so
 * the manifests are checked against what the code reads (test/eks/manifests.test.ts). Tuning
 * variables (timeouts, log level) keep their defaults there and are left out.
 */
export const DEPLOYED_AGENT_VARIABLES: readonly string[] = [
  CLUSTER_NAME_VARIABLE,
  CLUSTER_SECRET_VARIABLE,
  CLOUDSNAP_BUCKET_VARIABLE,
  CLOUDSNAP_KMS_KEY_VARIABLE,
  REGION_VARIABLE,
];

/** Where an agent listens unless told otherwise (`--api-listen`, `--nbd-listen`, `--replication-listen`). */
export const DEFAULT_LISTEN = {
  api: "127.0.0.1:9410",
  nbd: "127.0.0.1:10809",
  /** Used only when the cluster secret is set. */
  replication: "127.0.0.1:9510",
} as const;
