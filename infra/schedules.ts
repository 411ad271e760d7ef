import type { WorkflowName } from "./workflows.js";

/**
 * Strata's schedules: the one definition the CDK app deploys as EventBridge Scheduler schedules
 * (AWS::Scheduler::Schedule, target the state machine through the universal
 * `arn:aws:scheduler:::aws-sdk:sfn:startExecution` target or the templated Step Functions one) and
 * the local cloud runs as timers (infra/local/cloud.ts), so both start the same workflow as often.
 *
 * Scheduler rather than an EventBridge rule: it has a flexible time window (off here: a schedule's
 * slot should not slide) and retries a failed StartExecution on its own.
 */
export interface WorkflowScheduleDefinition {
  /** The schedule's name; the CDK app prefixes it with the stack's. */
  readonly name: string;
  readonly description: string;
  /** EventBridge Scheduler's expression, e.g. `rate(1 minute)`; the app may override the rate from context. */
  readonly scheduleExpression: string;
  readonly workflow: WorkflowName;
  /** The execution's input: the workflows started by a schedule read their clock from the context object. */
  readonly input: Record<string, never>;
}

export const strataSchedules: readonly WorkflowScheduleDefinition[] = [
  {
    name: "cloudsnaps",
    description:
      "Starts the cloudsnap workflow: every volume whose policy has a schedule due gets its cloudsnap, then retention",
    // A minute is the finest schedule a policy can have (interval minutes ≥ 1).
    scheduleExpression: "rate(1 minute)",
    workflow: "cloudsnap",
    input: {},
  },
];
