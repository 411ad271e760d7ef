import { setTimeout as sleep } from "node:timers/promises";
import type { DescribeExecutionOutput } from "@aws-sdk/client-sfn";
import type { RestoreRequest } from "../core/cloudsnaps.js";
import type { OperationService } from "../core/operations.js";
import type { WorkflowSource } from "./commands/workflow.js";
import { CliError } from "./failures.js";
import { followOperation } from "./progress.js";
import { workflowSteps } from "./workflow-steps.js";

/** How often --wait looks at the execution while its restore operation has not appeared yet. */
const EXECUTION_POLL_MS = 1_000;
/** Step Functions' limit on an execution name. */
const MAX_EXECUTION_NAME = 80;

/**
 * An execution name for a restore into `volume`: the volume names it (its dots, which Step
 * Functions refuses, as underscores) and the start time tells two restores into one name apart.
 */
export function restoreExecutionName(volume: string, at: Date = new Date()): string {
  const stamp = at.toISOString().replace(/[-:]|\.\d+/g, "");
  const head = `restore-${volume.replace(/\./g, "_")}`;
  return `${head.slice(0, MAX_EXECUTION_NAME - stamp.length - 1)}-${stamp}`;
}

/**
 * Follows a restore workflow until it ends: the restore operation's progress once the workflow has
 * started it, then the execution's outcome. A failed execution is one sentence: the step that
 * failed and why (check-restore's refusal, the operation's error), not the Fail state's summary.
 */
export async function followRestoreWorkflow(
  source: WorkflowSource,
  operations: Pick<OperationService, "listOperations" | "getOperation">,
  executionArn: string,
  request: RestoreRequest,
  startedAt: Date,
): Promise<void> {
  let execution = await source.find(executionArn);
  let followed = false;
  while (execution.status === "RUNNING") {
    if (!followed) {
      const operation = (await operations.listOperations()).find(
        (candidate) =>
          candidate.kind === "restore" &&
          candidate.volumeName === request.volume &&
          Date.parse(candidate.createdAt) >= startedAt.getTime() - 1000,
      );
      if (operation !== undefined) {
        await followOperation(operations, operation.id);
        followed = true;
      }
    }
    await sleep(EXECUTION_POLL_MS);
    execution = await source.find(executionArn);
  }
  if (execution.status !== "SUCCEEDED") {
    const status = execution.status?.toLowerCase() ?? "ended";
    throw new CliError(
      `the restore workflow ${execution.name} ${status}: ${await whyFailed(source, execution)}`,
    );
  }
}

/**
 * The last task that failed, in its own words (check-restore's refusal, start-operation's), rather
 * than the Fail state's summary; the summary when no task failed (the operation did not succeed).
 */
async function whyFailed(source: WorkflowSource, execution: DescribeExecutionOutput): Promise<string> {
  const { steps } = workflowSteps(await source.history(execution.executionArn!), execution);
  const failedTask = steps
    .filter((step) => step.error !== undefined && step.error.name !== execution.error)
    .at(-1);
  return failedTask?.error?.message || execution.cause || "no cause given";
}
