import { readFile, rm } from "node:fs/promises";
import { join } from "node:path";
import { z } from "zod";
import { writeJsonAtomic } from "../../agent/durable-file.js";

/**
 * `<dir>/cluster.json`: written by the supervisor once every agent is ready, removed when it stops.
 * The CLI finds the agents through it; a file whose supervisor pid is dead is stale.
 */
export const CLUSTER_FILE = "cluster.json";

export const ClusterNode = z.object({
  id: z.string(),
  zone: z.string(),
  apiUrl: z.string(),
  nbdAddress: z.string(),
  nbdSocket: z.string().nullable(),
  dataDir: z.string(),
});
export type ClusterNode = z.infer<typeof ClusterNode>;

/** Where the cluster state lives: the local DynamoDB-compatible server and the table in it. */
export const ClusterStateStore = z.object({
  /** For AWS_ENDPOINT_URL_DYNAMODB. */
  endpoint: z.string(),
  table: z.string(),
});

export const ClusterCloudsnaps = z.object({
  bucket: z.string(),
  /** The file the agents read the passphrase from; null when it is the supervisor's $STRATA_CLOUDSNAP_PASSPHRASE. */
  passphraseFile: z.string().nullable(),
});

export const ClusterFile = z.object({
  /** The supervisor's pid: alive means the cluster is running. */
  pid: z.number().int(),
  startedAt: z.string(),
  dynamodb: ClusterStateStore,
  /**
   * The local cloud: the cluster's name, and the AWS_ENDPOINT_URL_* variables of its Step Functions,
   * EventBridge, EC2, Auto Scaling, EKS and S3 endpoints, for the CLI's SDK clients.
   */
  cloud: z
    .object({
      clusterName: z.string(),
      endpoints: z.record(z.string(), z.string()),
      /** Where cloudsnaps go: this bucket at the S3 endpoint (AWS_ENDPOINT_URL_S3) of `endpoints`. */
      cloudsnaps: ClusterCloudsnaps.optional(),
    })
    .optional(),
  /** Every node of the cluster, running or stopped by the operator, with its last known endpoints. */
  nodes: z.array(ClusterNode),
});
export type ClusterFile = z.infer<typeof ClusterFile>;

export const clusterFilePath = (dir: string) => join(dir, CLUSTER_FILE);

/** undefined when no cluster has been started in `dir` (or it was stopped cleanly). */
export async function readClusterFile(dir: string): Promise<ClusterFile | undefined> {
  const path = clusterFilePath(dir);
  let text: string;
  try {
    text = await readFile(path, "utf8");
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw error;
  }
  let parsed: ReturnType<typeof ClusterFile.safeParse>;
  try {
    parsed = ClusterFile.safeParse(JSON.parse(text));
  } catch {
    throw new Error(`${path} is not valid JSON; remove it if no cluster is running there`);
  }
  if (!parsed.success)
    throw new Error(`${path} is not a Strata cluster file; remove it if no cluster is running there`);
  return parsed.data;
}

export const writeClusterFile = (dir: string, file: ClusterFile) =>
  writeJsonAtomic(clusterFilePath(dir), file);

export const removeClusterFile = (dir: string) => rm(clusterFilePath(dir), { force: true });
