import { Stack } from "aws-cdk-lib";
import type { Table } from "aws-cdk-lib/aws-dynamodb";
import { CfnPodIdentityAssociation } from "aws-cdk-lib/aws-eks";
import { PolicyStatement, Role, ServicePrincipal, SessionTagsPrincipal } from "aws-cdk-lib/aws-iam";
import type { Key } from "aws-cdk-lib/aws-kms";
import type { Bucket } from "aws-cdk-lib/aws-s3";
import { Construct } from "constructs";
import {
  KMS_CONTEXT_PURPOSE,
  KMS_CONTEXT_VOLUME,
  KMS_DATA_KEY_PURPOSE,
} from "../../agent/cloudsnap/kms-protector.js";
import { DriveTag } from "../../core/drive-sets.js";
import { TABLE_READ_ACTIONS, TABLE_WRITE_ACTIONS, viaS3 } from "./function-roles.js";
import { allow, type ReasonedStatement } from "./reasoned-statements.js";

/** Where the agent DaemonSet runs (deploy/kubernetes/), agreed with its manifest. */
export const AGENT_NAMESPACE = "strata-system";
export const AGENT_SERVICE_ACCOUNT = "strata-agent";

export interface AgentPodRoleProps {
  clusterName: string;
  table: Table;
  bucket: Bucket;
  key: Key;
}

/**
 * The agent pods' AWS identity, through EKS Pod Identity: only the cluster's `strata-agent`
 * service account in `strata-system` may take it (the session tags Pod Identity sets are checked
 * on the way in), and it reaches only the stack's table, bucket and key, plus the cluster's
 * drives. Attaching drives is not the agent's job (the node-loss workflow moves them).
 */
export class AgentPodRole extends Construct {
  readonly role: Role;

  constructor(scope: Construct, id: string, props: AgentPodRoleProps) {
    super(scope, id);
    const stack = Stack.of(this);
    this.role = new Role(this, "Role", {
      description: `Strata agents on EKS cluster ${props.clusterName} (${AGENT_NAMESPACE}/${AGENT_SERVICE_ACCOUNT})`,
      // Pod Identity assumes the role and tags the session (sts:AssumeRole and sts:TagSession).
      assumedBy: new SessionTagsPrincipal(
        new ServicePrincipal("pods.eks.amazonaws.com").withConditions({
          StringEquals: {
            "aws:SourceAccount": stack.account,
            "aws:RequestTag/eks-cluster-name": props.clusterName,
            "aws:RequestTag/kubernetes-namespace": AGENT_NAMESPACE,
            "aws:RequestTag/kubernetes-service-account": AGENT_SERVICE_ACCOUNT,
          },
        }),
      ),
    });
    allow(this.role, this.role, agentStatements(stack, props));
    new CfnPodIdentityAssociation(this, "PodIdentity", {
      clusterName: props.clusterName,
      namespace: AGENT_NAMESPACE,
      serviceAccount: AGENT_SERVICE_ACCOUNT,
      roleArn: this.role.roleArn,
    });
  }
}

function agentStatements(stack: Stack, props: AgentPodRoleProps): ReasonedStatement[] {
  const scoped = (statement: PolicyStatement): ReasonedStatement => ({ statement });
  return [
    scoped(
      new PolicyStatement({
        actions: [...TABLE_READ_ACTIONS, ...TABLE_WRITE_ACTIONS],
        resources: [props.table.tableArn],
      }),
    ),
    // Cloudsnaps: uploads, restores, retention's deletions, garbage collection's listing.
    {
      statement: new PolicyStatement({
        actions: ["s3:GetObject", "s3:PutObject", "s3:DeleteObject"],
        resources: [`${props.bucket.bucketArn}/volumes/*`],
      }),
      wildcard:
        "Cloudsnap objects are named by volume id and cloudsnap id at run time (core/cloud/cloudsnap-layout.ts): the agent reaches the volumes/ prefix of the stack's bucket only.",
    },
    scoped(
      new PolicyStatement({
        actions: ["s3:ListBucket"],
        resources: [props.bucket.bucketArn],
        conditions: { StringLike: { "s3:prefix": ["volumes/*"] } },
      }),
    ),
    // The bucket's own encryption, when S3 asks on the agent's behalf.
    scoped(
      new PolicyStatement({
        actions: ["kms:GenerateDataKey", "kms:Decrypt"],
        resources: [props.key.keyArn],
        conditions: { StringEquals: { "kms:ViaService": viaS3(stack) } },
      }),
    ),
    // Each volume's data key (agent/cloudsnap/kms-protector.ts), wrapped for that volume only: the
    // context must name a volume and the purpose, and nothing else.
    scoped(
      new PolicyStatement({
        actions: ["kms:Encrypt", "kms:Decrypt"],
        resources: [props.key.keyArn],
        conditions: {
          StringEquals: { [`kms:EncryptionContext:${KMS_CONTEXT_PURPOSE}`]: KMS_DATA_KEY_PURPOSE },
          Null: { [`kms:EncryptionContext:${KMS_CONTEXT_VOLUME}`]: "false" },
          "ForAllValues:StringEquals": {
            "kms:EncryptionContextKeys": [KMS_CONTEXT_VOLUME, KMS_CONTEXT_PURPOSE],
          },
        },
      }),
    ),
    {
      statement: new PolicyStatement({ actions: ["ec2:DescribeVolumes"], resources: ["*"] }),
      wildcard:
        "ec2:DescribeVolumes supports no resource-level permissions (IAM accepts only `*`); the agent finds its instance's drives with it, by tag.",
    },
    {
      statement: new PolicyStatement({
        actions: ["ec2:CreateTags"],
        resources: [stack.formatArn({ service: "ec2", resource: "volume", resourceName: "*" })],
        conditions: {
          StringEquals: { [`aws:ResourceTag/${DriveTag.cluster}`]: props.clusterName },
          "ForAllValues:StringEquals": { "aws:TagKeys": [DriveTag.driveSet] },
        },
      }),
      wildcard: `ec2:CreateTags of the ${DriveTag.driveSet} tag only, on volumes already tagged ${DriveTag.cluster}=<this cluster> (aws:ResourceTag condition): the agent names a new drive set, whose volume ids are unknown to this stack.`,
    },
  ];
}
