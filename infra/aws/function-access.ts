import type { WorkflowName } from "../workflows.js";

/**
 * What each Lambda calls in AWS, read from its code (handler.ts and the modules it loads), so its
 * role allows that and nothing else. The stack turns each grant into IAM statements
 * (infra/aws/function-roles.ts); a function of the catalog without an entry here fails synthesis.
 */
export type FunctionGrant =
  /** GetItem and Query on the state table (StateStore's reads are strongly consistent). */
  | { kind: "table"; write: false }
  /** Reads plus PutItem, UpdateItem and DeleteItem (conditional writes, leases, idempotency records). */
  | { kind: "table"; write: true }
  /** GetObject of the volumes' catalogs (volumes/<id>/catalog.json), through the bucket's KMS key. */
  | { kind: "cloudsnap-catalogs" }
  /** PutEvents on the stack's bus (Strata's own events). */
  | { kind: "put-events" }
  /** StartExecution of these workflows, DescribeExecution of their executions. */
  | { kind: "start-workflows"; workflows: readonly WorkflowName[] }
  /** ec2:DescribeAvailabilityZones (zonal autoshift names a zone by its id). */
  | { kind: "describe-zones" }
  /** ec2:DescribeInstances (a replacement's zone and node group, by its tags). */
  | { kind: "describe-instances" }
  /** ec2:DescribeVolumes (a drive set, by the cluster's and the drive set's tags). */
  | { kind: "describe-volumes" }
  /** ec2:AttachVolume (when `attach`) and ec2:DetachVolume of the cluster's drives on its node groups' instances. */
  | { kind: "move-drives"; attach: boolean }
  /** eks:DescribeNodegroup of the cluster's node groups (the desired size a replacement comes from). */
  | { kind: "describe-node-groups" }
  /** autoscaling:CompleteLifecycleAction on the node groups' Auto Scaling groups. */
  | { kind: "complete-lifecycle" };

const readTable: FunctionGrant = { kind: "table", write: false };
const writeTable: FunctionGrant = { kind: "table", write: true };

export const functionGrants: Readonly<Record<string, readonly FunctionGrant[]>> = {
  "event-intake": [
    writeTable,
    { kind: "describe-zones" },
    { kind: "start-workflows", workflows: ["node-loss", "az-failure"] },
    { kind: "complete-lifecycle" },
  ],
  "health-sweep": [writeTable, { kind: "put-events" }],
  "fence-node": [writeTable],
  "find-replacement": [
    readTable,
    { kind: "describe-instances" },
    { kind: "describe-volumes" },
    { kind: "describe-node-groups" },
  ],
  "move-drives": [
    writeTable,
    { kind: "describe-instances" },
    { kind: "describe-volumes" },
    { kind: "move-drives", attach: true },
  ],
  "release-replacement": [writeTable, { kind: "describe-volumes" }, { kind: "move-drives", attach: false }],
  "complete-lifecycle": [{ kind: "complete-lifecycle" }],
  "check-node": [readTable],
  "mark-zone": [writeTable],
  "plan-operations": [readTable],
  "start-operation": [writeTable],
  "poll-operation": [writeTable],
  "report-recovery": [{ kind: "put-events" }],
  "find-due-cloudsnaps": [readTable, { kind: "cloudsnap-catalogs" }],
  "apply-retention": [readTable, { kind: "cloudsnap-catalogs" }],
  "check-restore": [readTable, { kind: "cloudsnap-catalogs" }],
  "report-cloudsnap": [{ kind: "put-events" }],
};

/** The grants of `functionName`, or an error naming the function that has none. */
export function grantsOf(functionName: string): readonly FunctionGrant[] {
  const grants = functionGrants[functionName];
  if (grants === undefined)
    throw new Error(
      `functions/${functionName} has no entry in infra/aws/function-access.ts: say what it calls in AWS`,
    );
  return grants;
}
