import { ArnFormat, type Stack } from "aws-cdk-lib";
import { PolicyStatement } from "aws-cdk-lib/aws-iam";
import { DriveTag, NodeGroupTag } from "../../core/drive-sets.js";
import type { WorkflowName } from "../workflows.js";
import type { FunctionGrant } from "./function-access.js";
import type { ReasonedStatement } from "./reasoned-statements.js";

/** DynamoDB's calls behind StateStore's reads (GetCommand, paginateQuery). */
export const TABLE_READ_ACTIONS = ["dynamodb:GetItem", "dynamodb:Query"] as const;
/** And behind its writes and Powertools' idempotency records (PutCommand, UpdateCommand, DeleteCommand). */
export const TABLE_WRITE_ACTIONS = [
  "dynamodb:PutItem",
  "dynamodb:UpdateItem",
  "dynamodb:DeleteItem",
] as const;

/**
 * EC2's Describe calls and DescribeAvailabilityZones support no resource-level permissions: IAM
 * accepts only `*` for them (Service Authorization Reference, Amazon EC2, "Actions defined").
 */
export const DESCRIBE_ONLY_STAR = [
  "ec2:DescribeAvailabilityZones",
  "ec2:DescribeInstances",
  "ec2:DescribeVolumes",
] as const;

/** What the grants are scoped to: the stack's own resources and the cluster it serves. */
export interface GrantScope {
  tableArn: string;
  bucketArn: string;
  keyArn: string;
  eventBusArn: string;
  /** Each workflow's state machine ARN and name (executions are named within it). */
  stateMachines: ReadonlyMap<WorkflowName, { arn: string; name: string }>;
  clusterName: string;
  nodeGroups: readonly string[];
  zones: readonly string[];
}

/** The cloudsnap catalogs, one per volume (core/cloud/cloudsnap-layout.ts). */
export const catalogObjects = (bucketArn: string) => `${bucketArn}/volumes/*/catalog.json`;

/** The IAM statements a function with `grants` needs, each scoped as narrowly as IAM allows. */
export function grantStatements(
  stack: Stack,
  grants: readonly FunctionGrant[],
  scope: GrantScope,
): ReasonedStatement[] {
  return grants.flatMap((grant) => statementsOf(stack, grant, scope));
}

function statementsOf(stack: Stack, grant: FunctionGrant, scope: GrantScope): ReasonedStatement[] {
  switch (grant.kind) {
    case "table":
      return [
        {
          statement: new PolicyStatement({
            actions: [...TABLE_READ_ACTIONS, ...(grant.write ? TABLE_WRITE_ACTIONS : [])],
            resources: [scope.tableArn],
          }),
        },
      ];
    case "cloudsnap-catalogs":
      return catalogReads(stack, scope);
    case "put-events":
      return [
        { statement: new PolicyStatement({ actions: ["events:PutEvents"], resources: [scope.eventBusArn] }) },
      ];
    case "start-workflows":
      return workflowStarts(stack, grant.workflows, scope);
    case "describe-zones":
      return [describe("ec2:DescribeAvailabilityZones")];
    case "describe-instances":
      return [describe("ec2:DescribeInstances")];
    case "describe-volumes":
      return [describe("ec2:DescribeVolumes")];
    case "move-drives":
      return driveMoves(
        stack,
        grant.attach ? ["ec2:AttachVolume", "ec2:DetachVolume"] : ["ec2:DetachVolume"],
        scope,
      );
    case "describe-node-groups":
      return [
        {
          statement: new PolicyStatement({
            actions: ["eks:DescribeNodegroup"],
            resources: scope.nodeGroups.map((nodeGroup) =>
              stack.formatArn({
                service: "eks",
                resource: "nodegroup",
                resourceName: `${scope.clusterName}/${nodeGroup}/*`,
              }),
            ),
          }),
          wildcard:
            "eks:DescribeNodegroup on the deployment's node groups only: a node group's ARN ends with an id EKS gives it at creation, unknown to this stack.",
        },
      ];
    case "complete-lifecycle":
      return [lifecycleCompletion(stack, scope)];
  }
}

function describe(action: (typeof DESCRIBE_ONLY_STAR)[number]): ReasonedStatement {
  return {
    statement: new PolicyStatement({ actions: [action], resources: ["*"] }),
    wildcard: `${DESCRIBE_ONLY_STAR.join(", ")} support no resource-level permissions: IAM accepts only \`*\` for them.`,
  };
}

/**
 * A catalog is read with GetObject; a volume without one must answer 404 rather than 403, which
 * S3 does only for a caller allowed to list the bucket. The objects are encrypted with the stack's
 * key (SSE-KMS), so reading them is also a KMS Decrypt, allowed only when S3 asks on the caller's
 * behalf.
 */
export function catalogReads(stack: Stack, scope: GrantScope): ReasonedStatement[] {
  return [
    {
      statement: new PolicyStatement({
        actions: ["s3:GetObject"],
        resources: [catalogObjects(scope.bucketArn)],
      }),
      wildcard:
        "s3:GetObject of the volumes' catalogs only (volumes/<volume id>/catalog.json): volume ids are made at run time.",
    },
    {
      statement: new PolicyStatement({
        actions: ["s3:ListBucket"],
        resources: [scope.bucketArn],
        conditions: { StringLike: { "s3:prefix": ["volumes/*"] } },
      }),
    },
    {
      statement: new PolicyStatement({
        actions: ["kms:Decrypt"],
        resources: [scope.keyArn],
        conditions: { StringEquals: { "kms:ViaService": viaS3(stack) } },
      }),
    },
  ];
}

export const viaS3 = (stack: Stack) => `s3.${stack.region}.amazonaws.com`;

function workflowStarts(
  stack: Stack,
  workflows: readonly WorkflowName[],
  scope: GrantScope,
): ReasonedStatement[] {
  const machines = workflows.map((workflow) => {
    const machine = scope.stateMachines.get(workflow);
    if (machine === undefined) throw new Error(`no state machine for the ${workflow} workflow`);
    return machine;
  });
  return [
    {
      statement: new PolicyStatement({
        actions: ["states:StartExecution"],
        resources: machines.map((machine) => machine.arn),
      }),
    },
    // Intake asks how an incident's earlier execution ended before starting it again.
    {
      statement: new PolicyStatement({
        actions: ["states:DescribeExecution"],
        resources: machines.map((machine) =>
          stack.formatArn({
            service: "states",
            resource: "execution",
            resourceName: `${machine.name}:*`,
            arnFormat: ArnFormat.COLON_RESOURCE_NAME,
          }),
        ),
      }),
      wildcard: `states:DescribeExecution of the executions of ${workflows.join(" and ")} only: intake names each execution after its incident at run time.`,
    },
  ];
}

/**
 * Attach and detach name two resources, the volume and the instance, and IAM checks the statement
 * against each: so one statement for the cluster's drives (tagged by Strata) and one for its node
 * groups' instances (tagged by EKS), each with its own tag conditions. Within the given zones
 * only, when the deployment names them.
 */
function driveMoves(stack: Stack, actions: string[], scope: GrantScope): ReasonedStatement[] {
  const inZones = scope.zones.length > 0 ? { "ec2:AvailabilityZone": [...scope.zones] } : {};
  return [
    {
      statement: new PolicyStatement({
        actions,
        resources: [stack.formatArn({ service: "ec2", resource: "volume", resourceName: "*" })],
        conditions: {
          StringEquals: { [`aws:ResourceTag/${DriveTag.cluster}`]: scope.clusterName, ...inZones },
        },
      }),
      wildcard: `${actions.join(", ")} only on volumes tagged ${DriveTag.cluster}=<this cluster> (aws:ResourceTag condition): drives are made with their nodes, so their ids are unknown to this stack.`,
    },
    {
      statement: new PolicyStatement({
        actions,
        resources: [stack.formatArn({ service: "ec2", resource: "instance", resourceName: "*" })],
        conditions: {
          StringEquals: {
            [`aws:ResourceTag/${NodeGroupTag.cluster}`]: scope.clusterName,
            [`aws:ResourceTag/${NodeGroupTag.nodeGroup}`]: [...scope.nodeGroups],
            ...inZones,
          },
        },
      }),
      wildcard: `${actions.join(", ")} only on instances EKS tagged as this cluster's node groups (aws:ResourceTag conditions): node groups launch and replace instances at run time.`,
    },
  ];
}

/**
 * A managed node group's Auto Scaling group is named `eks-<node group>-<uuid>` and tagged with the
 * cluster and the node group, like its instances.
 */
function lifecycleCompletion(stack: Stack, scope: GrantScope): ReasonedStatement {
  const statement = new PolicyStatement({
    actions: ["autoscaling:CompleteLifecycleAction"],
    resources: scope.nodeGroups.map((nodeGroup) =>
      stack.formatArn({
        service: "autoscaling",
        resource: "autoScalingGroup",
        resourceName: `*:autoScalingGroupName/eks-${nodeGroup}-*`,
        arnFormat: ArnFormat.COLON_RESOURCE_NAME,
      }),
    ),
    conditions: {
      StringEquals: {
        [`aws:ResourceTag/${NodeGroupTag.cluster}`]: scope.clusterName,
        [`aws:ResourceTag/${NodeGroupTag.nodeGroup}`]: [...scope.nodeGroups],
      },
    },
  });
  return {
    statement,
    wildcard:
      "autoscaling:CompleteLifecycleAction on the node groups' Auto Scaling groups only (eks-<node group>-<id>, tagged with the cluster and node group): EKS names them with an id of its own.",
  };
}
