/**
 * Strata's Lambdas and state machines: the one catalog the local cloud runs and the CDK app deploys.
 * A function's `substitution` is the placeholder the ASL files use for its ARN (`${…FunctionArn}`,
 * CloudFormation's DefinitionSubstitutions), so the same files run in both places.
 */
export interface StrataFunction {
  /** The folder under functions/, the bundle's name, and the Lambda's name after the stack's prefix. */
  name: string;
  substitution: string;
  description: string;
}

export const strataFunctions: readonly StrataFunction[] = [
  {
    name: "event-intake",
    substitution: "EventIntakeFunctionArn",
    description: "Turns AWS and Strata events into workflow starts",
  },
  {
    name: "health-sweep",
    substitution: "HealthSweepFunctionArn",
    description: "Marks nodes and zones offline or online from heartbeats",
  },
  {
    name: "fence-node",
    substitution: "FenceNodeFunctionArn",
    description: "Fences a lost node out of its volumes",
  },
  {
    name: "find-replacement",
    substitution: "FindReplacementFunctionArn",
    description: "Finds the instance that takes over a lost node's drives",
  },
  {
    name: "move-drives",
    substitution: "MoveDrivesFunctionArn",
    description: "Moves a lost node's drive set to its replacement",
  },
  {
    name: "release-replacement",
    substitution: "ReleaseReplacementFunctionArn",
    description: "Takes a failed drive move back and frees its replacement",
  },
  {
    name: "complete-lifecycle",
    substitution: "CompleteLifecycleFunctionArn",
    description: "Lets Auto Scaling finish terminating a lost instance",
  },
  {
    name: "check-node",
    substitution: "CheckNodeFunctionArn",
    description: "Whether a node serves from its replacement instance",
  },
  {
    name: "mark-zone",
    substitution: "MarkZoneFunctionArn",
    description: "Marks a zone available or unavailable for placement",
  },
  {
    name: "plan-operations",
    substitution: "PlanOperationsFunctionArn",
    description: "Plans repairs, resyncs and re-spreads",
  },
  {
    name: "start-operation",
    substitution: "StartOperationFunctionArn",
    description: "Starts an operation on a node",
  },
  {
    name: "poll-operation",
    substitution: "PollOperationFunctionArn",
    description: "Reads an operation's state",
  },
  {
    name: "report-recovery",
    substitution: "ReportRecoveryFunctionArn",
    description: "Puts a recovery's events",
  },
  {
    name: "find-due-cloudsnaps",
    substitution: "FindDueCloudsnapsFunctionArn",
    description: "Finds the volumes whose cloudsnap schedule is due",
  },
  {
    name: "apply-retention",
    substitution: "ApplyRetentionFunctionArn",
    description: "Starts the deletion of the cloudsnaps a policy no longer keeps",
  },
  {
    name: "check-restore",
    substitution: "CheckRestoreFunctionArn",
    description: "Checks a restore request and names its operation",
  },
  {
    name: "report-cloudsnap",
    substitution: "ReportCloudsnapFunctionArn",
    description: "Puts a cloudsnap's or a restore's event",
  },
];

export type WorkflowName = "node-loss" | "az-failure" | "cloudsnap" | "restore";

export interface StrataWorkflow {
  name: WorkflowName;
  /** Relative to the project root. */
  definitionFile: string;
}

export const strataWorkflows: readonly StrataWorkflow[] = [
  { name: "node-loss", definitionFile: "state-machines/node-loss.asl.json" },
  { name: "az-failure", definitionFile: "state-machines/az-failure.asl.json" },
  { name: "cloudsnap", definitionFile: "state-machines/cloudsnap.asl.json" },
  { name: "restore", definitionFile: "state-machines/restore.asl.json" },
];

/** The prefix of every named resource of a deployment (infra/aws) unless it names another. */
export const DEFAULT_PREFIX = "strata";

/** The state machine that runs `workflow`: `<prefix>-<workflow>`, in AWS and in the local cloud. */
export const stateMachineName = (prefix: string, workflow: WorkflowName) => `${prefix}-${workflow}`;
