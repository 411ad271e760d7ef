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

const RATE = /^rate\((\d+) (minute|minutes|hour|hours|day|days)\)$/;
const UNIT_MS = { minute: 60_000, hour: 3_600_000, day: 86_400_000 } as const;

/**
 * A `rate(...)` schedule's period: what the local cloud's timers run at. The local cloud takes only
 * rates (Strata's schedules are all rates; a cron or at() one would need Scheduler's own clock).
 */
export function ratePeriodMs(schedule: WorkflowScheduleDefinition): number {
  const match = RATE.exec(schedule.scheduleExpression);
  if (match === null) {
    throw new Error(
      `schedule ${schedule.name}: the local cloud runs rate(N minutes|hours|days) schedules, not ${schedule.scheduleExpression}`,
    );
  }
  const unit = match[2]!.replace(/s$/, "") as keyof typeof UNIT_MS;
  return Number(match[1]) * UNIT_MS[unit];
}
