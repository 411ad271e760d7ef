import { dirname, join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { fileURLToPath } from "node:url";
import type { DescribeExecutionOutput } from "@aws-sdk/client-sfn";
import { LOCAL_ACCOUNT_ID } from "../../infra/local/aws/identity.js";
import { loadDefinition } from "../../infra/local/step-functions/definitions.js";
import type { LocalFunction } from "../../infra/local/step-functions/lambda-task.js";
import { LocalStepFunctions } from "../../infra/local/step-functions/local-step-functions.js";

/**
 * A Step Functions runner with the two machine names of the local cloud over small fixture ASL
 * files, their Lambdas in-process: `strata-node-loss` retries its plan once, polls two operations
 * through a Map until each is done, then fails to report and is caught into a Fail state;
 * `strata-az-failure` runs one Task.
 */
export const FIXTURES = join(dirname(fileURLToPath(import.meta.url)), "../fixtures/workflow-views");
export const REGION = "local";

const fn = (name: string) => `arn:aws:lambda:${REGION}:${LOCAL_ACCOUNT_ID}:function:strata-${name}`;
const FUNCTION_ARNS = {
  PlanFunctionArn: fn("plan-operations"),
  PollFunctionArn: fn("check-operation"),
  ReportFunctionArn: fn("report-recovery"),
};

/** A handler error as the functions throw them: the name is what Retry and Catch match. */
class NamedError extends Error {
  constructor(name: string, message: string) {
    super(message);
    this.name = name;
  }
}

function handlers(): Map<string, LocalFunction> {
  let plans = 0;
  const polls = new Map<string, number>();
  return new Map<string, LocalFunction>([
    [
      FUNCTION_ARNS.PlanFunctionArn,
      async () => {
        plans += 1;
        if (plans === 1) throw new NamedError("Strata.Transient", "the state table is throttling");
        return { operations: [{ id: "op-1" }, { id: "op-2" }] };
      },
    ],
    [
      FUNCTION_ARNS.PollFunctionArn,
      async (event) => {
        const id = (event as { id: string }).id;
        const count = (polls.get(id) ?? 0) + 1;
        polls.set(id, count);
        return { id, done: count >= 2 };
      },
    ],
    [
      FUNCTION_ARNS.ReportFunctionArn,
      async () => {
        throw new NamedError("Strata.Refused", "node-2 still holds the lease of vol-a");
      },
    ],
  ]);
}

export async function fixtureStepFunctions(): Promise<LocalStepFunctions> {
  const definition = (file: string) => loadDefinition(join(FIXTURES, file), FUNCTION_ARNS);
  return new LocalStepFunctions({
    stateMachines: [
      { name: "strata-node-loss", definition: await definition("recovery.asl.json") },
      { name: "strata-az-failure", definition: await definition("simple.asl.json") },
      // `workflow list` reads every Strata workflow's executions, as the local cloud runs them all.
      { name: "strata-cloudsnap", definition: await definition("simple.asl.json") },
      { name: "strata-restore", definition: await definition("simple.asl.json") },
    ],
    functions: handlers(),
    region: REGION,
    waitTimeCapMs: 20,
    retryIntervalCapMs: 20,
  });
}

export async function closedExecution(
  sfn: LocalStepFunctions,
  executionArn: string,
): Promise<DescribeExecutionOutput> {
  const deadline = Date.now() + 10_000;
  for (;;) {
    const execution = await sfn.describeExecution({ executionArn });
    if (execution.status !== "RUNNING") return execution;
    if (Date.now() > deadline) throw new Error(`${executionArn} still running`);
    await sleep(5);
  }
}
