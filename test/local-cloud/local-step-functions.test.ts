/**
 * The local Step Functions runs ASL files the way AWS runs them for Standard workflows: Task chains,
 * Choice, Map, Wait poll loops, Retry and Catch on errors named by the Lambda handlers, and the
 * API's own rules (idempotent StartExecution, refusals, Stop, List and History paging).
 */
import { dirname, join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { fileURLToPath } from "node:url";
import type { DescribeExecutionOutput, HistoryEvent, HistoryEventType } from "@aws-sdk/client-sfn";
import { afterEach, describe, expect, it } from "vitest";
import { LOCAL_ACCOUNT_ID } from "../../infra/local/aws/identity.js";
import { AwsServiceError } from "../../infra/local/aws/service-error.js";
import { loadDefinition, parseDefinition } from "../../infra/local/step-functions/definitions.js";
import type { LocalFunction } from "../../infra/local/step-functions/lambda-task.js";
import {
  LocalStepFunctions,
  type LocalStepFunctionsOptions,
} from "../../infra/local/step-functions/local-step-functions.js";

const ASL = join(dirname(fileURLToPath(import.meta.url)), "../fixtures/asl");
const REGION = "eu-west-3";
const fn = (name: string) => `arn:aws:lambda:${REGION}:${LOCAL_ACCOUNT_ID}:function:strata-${name}`;
const FUNCTION_ARNS = {
  DescribeNodeFunctionArn: fn("describe-node"),
  FenceNodeFunctionArn: fn("fence-node"),
  RereplicateFunctionArn: fn("rereplicate"),
  CheckResyncFunctionArn: fn("check-resync"),
  RecordFailureFunctionArn: fn("record-failure"),
};
const machineArn = (name: string) => `arn:aws:states:${REGION}:${LOCAL_ACCOUNT_ID}:stateMachine:${name}`;

/** A handler error as the functions throw them: the name is what Retry and Catch match. */
class NamedError extends Error {
  constructor(name: string, message: string) {
    super(message);
    this.name = name;
  }
}

const running: LocalStepFunctions[] = [];
afterEach(async () => {
  await Promise.all(running.splice(0).map((sfn) => sfn.close()));
});

async function localStepFunctions(
  machines: string[],
  handlers: Partial<Record<keyof typeof FUNCTION_ARNS, LocalFunction>>,
  options: Partial<LocalStepFunctionsOptions> = {},
): Promise<LocalStepFunctions> {
  const stateMachines = await Promise.all(
    machines.map(async (name) => ({
      name,
      definition: await loadDefinition(join(ASL, `${name}.asl.json`), FUNCTION_ARNS),
    })),
  );
  const unused: LocalFunction = async () => {
    throw new Error("not called in this test");
  };
  const functions = new Map(
    Object.entries(FUNCTION_ARNS).map(([key, arn]) => [
      arn,
      handlers[key as keyof typeof FUNCTION_ARNS] ?? unused,
    ]),
  );
  const sfn = new LocalStepFunctions({ stateMachines, functions, region: REGION, ...options });
  running.push(sfn);
  return sfn;
}

async function closed(sfn: LocalStepFunctions, executionArn: string): Promise<DescribeExecutionOutput> {
  const deadline = Date.now() + 10_000;
  for (;;) {
    const execution = await sfn.describeExecution({ executionArn });
    if (execution.status !== "RUNNING") return execution;
    if (Date.now() > deadline) throw new Error(`${executionArn} still running`);
    await sleep(5);
  }
}

async function history(sfn: LocalStepFunctions, executionArn: string): Promise<HistoryEvent[]> {
  return (await sfn.getExecutionHistory({ executionArn, maxResults: 1000 })).events ?? [];
}

const types = (events: HistoryEvent[]) => events.map((event) => event.type);

async function refusal(promise: Promise<unknown>): Promise<AwsServiceError> {
  const error = await promise.then(
    () => undefined,
    (thrown: unknown) => thrown,
  );
  if (!(error instanceof AwsServiceError)) throw new Error(`expected a refusal, got ${String(error)}`);
  return error;
}

describe("ASL definitions", () => {
  it("applies definition substitutions and names a placeholder without one", async () => {
    const definition = await loadDefinition(join(ASL, "fence-with-retry.asl.json"), FUNCTION_ARNS);
    expect(definition.States["FenceNode"]).toMatchObject({ Resource: FUNCTION_ARNS.FenceNodeFunctionArn });
    await expect(
      loadDefinition(join(ASL, "fence-with-retry.asl.json"), { FenceNodeFunctionArn: "x" }),
    ).rejects.toThrow(/fence-with-retry\.asl\.json: no substitution for \$\{RecordFailureFunctionArn\}/);
  });

  it("refuses transitions to missing states and duplicate names, naming the state", () => {
    const machine = (states: object, startAt = "A") => JSON.stringify({ StartAt: startAt, States: states });
    expect(() => parseDefinition(machine({ A: { Type: "Pass", End: true } }, "B"))).toThrow(
      /StartAt "B" names no state/,
    );
    expect(() => parseDefinition(machine({ A: { Type: "Pass", Next: "Nowhere" } }))).toThrow(
      /state "A": Next "Nowhere" names no state/,
    );
    expect(() =>
      parseDefinition(
        machine({
          A: { Type: "Choice", Choices: [{ Variable: "$.x", IsNull: true, Next: "B" }], Default: "C" },
        }),
      ),
    ).toThrow(/state "A": Choices\[0\].Next "B" names no state/);
    const map = {
      Type: "Map",
      ItemProcessor: { StartAt: "A", States: { A: { Type: "Pass", End: true } } },
      End: true,
    };
    expect(() => parseDefinition(machine({ A: map }))).toThrow(/state "A" is defined twice/);
    expect(() =>
      parseDefinition(machine({ A: { Type: "Pass", QueryLanguage: "JSONata", End: true } })),
    ).toThrow(/state "A": QueryLanguage "JSONata"/);
  });

  it("refuses a Task whose Resource is no local function, naming the state and the resource", async () => {
    const definition = parseDefinition(
      JSON.stringify({
        StartAt: "Each",
        States: {
          Each: {
            Type: "Map",
            ItemProcessor: {
              StartAt: "Call",
              States: { Call: { Type: "Task", Resource: fn("unknown"), End: true } },
            },
            End: true,
          },
        },
      }),
    );
    expect(
      () => new LocalStepFunctions({ stateMachines: [{ name: "m", definition }], functions: new Map() }),
    ).toThrow(`Task "Call" calls ${fn("unknown")}, which is no local function`);
  });
});

describe("LocalStepFunctions", () => {
  it("runs a Task chain and a Choice, with the input and output AWS would pass", async () => {
    const fenced: unknown[] = [];
    const sfn = await localStepFunctions(["node-loss-chain"], {
      DescribeNodeFunctionArn: async () => ({ epoch: 7, zone: "a" }),
      FenceNodeFunctionArn: async (event) => {
        fenced.push(event);
        return { fenced: true };
      },
    });
    const { executionArn } = await sfn.startExecution({
      stateMachineArn: machineArn("node-loss-chain"),
      name: "node-loss-i-0abc",
      input: JSON.stringify({ nodeId: "i-0abc" }),
    });
    expect(executionArn).toBe(
      `arn:aws:states:${REGION}:${LOCAL_ACCOUNT_ID}:execution:node-loss-chain:node-loss-i-0abc`,
    );
    const execution = await closed(sfn, executionArn!);
    expect(execution.status).toBe("SUCCEEDED");
    expect(fenced).toEqual([{ nodeId: "i-0abc", epoch: 7 }]);
    expect(JSON.parse(execution.output!)).toEqual({
      nodeId: "i-0abc",
      node: { epoch: 7, zone: "a" },
      fence: { fenced: true },
      action: "re-replicate",
    });
    expect(execution.stopDate!.getTime()).toBeGreaterThanOrEqual(execution.startDate!.getTime());
  });

  it("gives the states the Context Object's execution and state machine, and dates by its clock", async () => {
    const definition = parseDefinition(
      JSON.stringify({
        StartAt: "Name",
        States: {
          Name: {
            Type: "Pass",
            Parameters: {
              "execution.$": "$$.Execution.Id",
              "name.$": "$$.Execution.Name",
              "machine.$": "$$.StateMachine.Name",
            },
            End: true,
          },
        },
      }),
    );
    const now = new Date("2026-01-02T03:04:05.000Z");
    const sfn = new LocalStepFunctions({
      stateMachines: [{ name: "named", definition }],
      functions: new Map(),
      clock: () => now,
    });
    running.push(sfn);
    const { executionArn } = await sfn.startExecution({
      stateMachineArn: sfn.stateMachineArn("named"),
      name: "n-1",
    });
    const execution = await closed(sfn, executionArn!);
    expect(JSON.parse(execution.output!)).toEqual({ execution: executionArn, name: "n-1", machine: "named" });
    // Every date it reports comes from the clock it was given.
    expect(execution).toMatchObject({ startDate: now, stopDate: now });
    const timestamps = (await history(sfn, executionArn!)).map((event) => event.timestamp?.getTime());
    expect(new Set(timestamps)).toEqual(new Set([now.getTime()]));
  });

  it("records the history in AWS's event shapes and order, and pages it both ways", async () => {
    const sfn = await localStepFunctions(["node-loss-chain"], {
      DescribeNodeFunctionArn: async () => ({ epoch: 1, replacement: "i-0new" }),
      FenceNodeFunctionArn: async () => ({}),
    });
    const { executionArn } = await sfn.startExecution({
      stateMachineArn: machineArn("node-loss-chain"),
      input: '{"nodeId":"i-1"}',
    });
    await closed(sfn, executionArn!);
    const events = await history(sfn, executionArn!);
    expect(types(events)).toEqual<HistoryEventType[]>([
      "ExecutionStarted",
      "TaskStateEntered",
      "LambdaFunctionScheduled",
      "LambdaFunctionStarted",
      "LambdaFunctionSucceeded",
      "TaskStateExited",
      "TaskStateEntered",
      "LambdaFunctionScheduled",
      "LambdaFunctionStarted",
      "LambdaFunctionSucceeded",
      "TaskStateExited",
      "ChoiceStateEntered",
      "ChoiceStateExited",
      "PassStateEntered",
      "PassStateExited",
      "SucceedStateEntered",
      "SucceedStateExited",
      "ExecutionSucceeded",
    ]);
    expect(events.map((event) => event.id)).toEqual(events.map((_, i) => i + 1));
    expect(events.map((event) => event.previousEventId)).toEqual(events.map((_, i) => i));
    expect(events[0]!.executionStartedEventDetails?.input).toBe('{"nodeId":"i-1"}');
    expect(events[1]!.stateEnteredEventDetails?.name).toBe("DescribeNode");
    expect(events[2]!.lambdaFunctionScheduledEventDetails).toMatchObject({
      resource: FUNCTION_ARNS.DescribeNodeFunctionArn,
      input: '{"nodeId":"i-1"}',
    });
    expect(events[13]!.stateEnteredEventDetails?.name).toBe("MoveDrives");

    const first = await sfn.getExecutionHistory({ executionArn, maxResults: 10 });
    expect(first.events?.map((event) => event.id)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
    const second = await sfn.getExecutionHistory({
      executionArn,
      maxResults: 10,
      nextToken: first.nextToken,
    });
    expect(second.events?.map((event) => event.id)).toEqual([11, 12, 13, 14, 15, 16, 17, 18]);
    expect(second.nextToken).toBeUndefined();
    const newest = await sfn.getExecutionHistory({ executionArn, maxResults: 2, reverseOrder: true });
    expect(newest.events?.map((event) => event.type)).toEqual(["ExecutionSucceeded", "SucceedStateExited"]);
    expect(
      (
        await refusal(
          sfn.getExecutionHistory({ executionArn, reverseOrder: true, nextToken: first.nextToken }),
        )
      ).code,
    ).toBe("InvalidToken");
    const bare = await sfn.getExecutionHistory({ executionArn, includeExecutionData: false });
    expect(bare.events?.[0]?.executionStartedEventDetails?.input).toBeUndefined();
  });

  it("runs a Map's iterations through the Lambda, at most MaxConcurrency at a time", async () => {
    let inFlight = 0;
    let most = 0;
    const sfn = await localStepFunctions(["rereplicate-each"], {
      RereplicateFunctionArn: async (event) => {
        inFlight++;
        most = Math.max(most, inFlight);
        await sleep(20);
        inFlight--;
        const { volumeId } = event as { volumeId: string };
        return { volumeId, replicatedTo: "node-b" };
      },
    });
    const volumes = ["vol-1", "vol-2", "vol-3", "vol-4", "vol-5"];
    const { executionArn } = await sfn.startExecution({
      stateMachineArn: machineArn("rereplicate-each"),
      input: JSON.stringify({ nodeId: "node-a", volumes }),
    });
    const execution = await closed(sfn, executionArn!);
    expect(execution.status).toBe("SUCCEEDED");
    expect(JSON.parse(execution.output!).results).toEqual(
      volumes.map((volumeId) => ({ volumeId, replicatedTo: "node-b" })),
    );
    expect(most).toBe(2);
    const events = await history(sfn, executionArn!);
    const started = events.filter((event) => event.type === "MapIterationStarted");
    expect(started.map((event) => event.mapIterationStartedEventDetails?.index).sort()).toEqual([
      0, 1, 2, 3, 4,
    ]);
    expect(types(events).filter((type) => type === "LambdaFunctionSucceeded")).toHaveLength(5);
    expect(types(events).slice(-3)).toEqual(["MapStateSucceeded", "MapStateExited", "ExecutionSucceeded"]);
  });

  it("runs the Tasks of Parallel branches through their Lambdas", async () => {
    const definition = parseDefinition(
      JSON.stringify({
        StartAt: "Both",
        States: {
          Both: {
            Type: "Parallel",
            Branches: [
              { StartAt: "Fence", States: { Fence: { Type: "Task", Resource: `\${Fence}`, End: true } } },
              {
                StartAt: "Describe",
                States: { Describe: { Type: "Task", Resource: `\${Describe}`, End: true } },
              },
            ],
            End: true,
          },
        },
      }),
      { Fence: FUNCTION_ARNS.FenceNodeFunctionArn, Describe: FUNCTION_ARNS.DescribeNodeFunctionArn },
    );
    const functions = new Map<string, LocalFunction>([
      [FUNCTION_ARNS.FenceNodeFunctionArn, async () => "fenced"],
      [FUNCTION_ARNS.DescribeNodeFunctionArn, async () => "described"],
    ]);
    const sfn = new LocalStepFunctions({ stateMachines: [{ name: "both", definition }], functions });
    running.push(sfn);
    const { executionArn } = await sfn.startExecution({ stateMachineArn: sfn.stateMachineArn("both") });
    const execution = await closed(sfn, executionArn!);
    expect(execution).toMatchObject({ status: "SUCCEEDED", output: '["fenced","described"]' });
    const events = types(await history(sfn, executionArn!));
    expect(events.slice(0, 3)).toEqual(["ExecutionStarted", "ParallelStateEntered", "ParallelStateStarted"]);
    expect(events.filter((type) => type === "LambdaFunctionSucceeded")).toHaveLength(2);
    expect(events.slice(-3)).toEqual(["ParallelStateSucceeded", "ParallelStateExited", "ExecutionSucceeded"]);
  });

  it("turns a Wait poll loop fast when Waits are capped", async () => {
    let checks = 0;
    const sfn = await localStepFunctions(
      ["await-resync"],
      { CheckResyncFunctionArn: async () => ({ done: ++checks === 4 }) },
      { waitTimeCapMs: 10 },
    );
    const started = Date.now();
    const { executionArn } = await sfn.startExecution({ stateMachineArn: machineArn("await-resync") });
    const execution = await closed(sfn, executionArn!);
    expect(execution.status).toBe("SUCCEEDED");
    expect(checks).toBe(4);
    expect(Date.now() - started).toBeLessThan(5_000); // uncapped: three 30 s Waits.
    const waits = types(await history(sfn, executionArn!)).filter((type) => type === "WaitStateEntered");
    expect(waits).toHaveLength(3);
  });

  it("retries a task on the error name its handler throws, then goes on", async () => {
    let attempts = 0;
    const sfn = await localStepFunctions(
      ["fence-with-retry"],
      {
        FenceNodeFunctionArn: async () => {
          if (++attempts <= 2) throw new NamedError("Strata.Transient", `attempt ${attempts}: EC2 throttled`);
          return { fenced: true };
        },
      },
      { retryIntervalCapMs: 5 },
    );
    const { executionArn } = await sfn.startExecution({ stateMachineArn: machineArn("fence-with-retry") });
    const execution = await closed(sfn, executionArn!);
    expect(execution.status).toBe("SUCCEEDED");
    expect(attempts).toBe(3);
    const events = await history(sfn, executionArn!);
    const failed = events.filter((event) => event.type === "LambdaFunctionFailed");
    expect(failed.map((event) => event.lambdaFunctionFailedEventDetails?.error)).toEqual([
      "Strata.Transient",
      "Strata.Transient",
    ]);
    expect(types(events).filter((type) => type === "LambdaFunctionScheduled")).toHaveLength(3);
  });

  it("retries with the definition's own backoff and full jitter when retries are not capped", async () => {
    const definition = parseDefinition(
      JSON.stringify({
        StartAt: "Fence",
        States: {
          Fence: {
            Type: "Task",
            Resource: FUNCTION_ARNS.FenceNodeFunctionArn,
            Retry: [
              {
                ErrorEquals: ["Strata.Transient"],
                IntervalSeconds: 1,
                MaxAttempts: 1,
                JitterStrategy: "FULL",
              },
            ],
            End: true,
          },
        },
      }),
    );
    let attempts = 0;
    const functions = new Map<string, LocalFunction>([
      [
        FUNCTION_ARNS.FenceNodeFunctionArn,
        async () => {
          if (++attempts === 1) throw new NamedError("Strata.Transient", "throttled");
          return "fenced";
        },
      ],
    ]);
    const sfn = new LocalStepFunctions({ stateMachines: [{ name: "jitter", definition }], functions });
    running.push(sfn);
    const { executionArn } = await sfn.startExecution({ stateMachineArn: sfn.stateMachineArn("jitter") });
    expect(await closed(sfn, executionArn!)).toMatchObject({ status: "SUCCEEDED", output: '"fenced"' });
    expect(attempts).toBe(2);
  });

  it("catches what the retries do not cure, with AWS's Lambda error and cause at the ResultPath", async () => {
    const recorded: unknown[] = [];
    const sfn = await localStepFunctions(
      ["fence-with-retry"],
      {
        FenceNodeFunctionArn: async () => {
          throw new NamedError("Strata.NodeUnreachable", "no route to i-0abc");
        },
        RecordFailureFunctionArn: async (event) => {
          recorded.push(event);
          return { recorded: true };
        },
      },
      { retryIntervalCapMs: 5 },
    );
    const { executionArn } = await sfn.startExecution({
      stateMachineArn: machineArn("fence-with-retry"),
      input: '{"nodeId":"i-0abc"}',
    });
    const execution = await closed(sfn, executionArn!);
    expect(recorded).toHaveLength(1);
    const { error } = recorded[0] as { error: { Error: string; Cause: string } };
    expect(error.Error).toBe("Strata.NodeUnreachable");
    expect(JSON.parse(error.Cause)).toMatchObject({
      errorType: "Strata.NodeUnreachable",
      errorMessage: "no route to i-0abc",
      trace: expect.arrayContaining([expect.stringContaining("no route to i-0abc")]),
    });
    expect(recorded[0]).toMatchObject({ nodeId: "i-0abc" });
    // Not named Strata.Transient: caught at once, never retried. Then the Fail state ends it.
    const events = await history(sfn, executionArn!);
    expect(types(events).filter((type) => type === "LambdaFunctionScheduled")).toHaveLength(2);
    expect(execution).toMatchObject({
      status: "FAILED",
      error: "Strata.NotFenced",
      cause: "the node could not be fenced",
    });
    expect(events.at(-1)).toMatchObject({
      type: "ExecutionFailed",
      executionFailedEventDetails: { error: "Strata.NotFenced", cause: "the node could not be fenced" },
    });
  });

  it("fails an execution whose task error nothing catches, with the Lambda error and cause", async () => {
    const sfn = await localStepFunctions(["node-loss-chain"], {
      DescribeNodeFunctionArn: async () => {
        throw new TypeError("Cannot read properties of undefined");
      },
    });
    const { executionArn } = await sfn.startExecution({ stateMachineArn: machineArn("node-loss-chain") });
    const execution = await closed(sfn, executionArn!);
    expect(execution.status).toBe("FAILED");
    expect(execution.error).toBe("TypeError");
    expect(JSON.parse(execution.cause!)).toMatchObject({
      errorType: "TypeError",
      errorMessage: "Cannot read properties of undefined",
    });
  });

  it("starts Standard executions idempotently by name and input, and refuses what AWS refuses", async () => {
    const sfn = await localStepFunctions(["hold"], {});
    const stateMachineArn = machineArn("hold");
    const input = '{"seconds":3600}';
    const first = await sfn.startExecution({ stateMachineArn, name: "hold-1", input });
    const again = await sfn.startExecution({ stateMachineArn, name: "hold-1", input });
    expect(again).toEqual(first);
    expect(
      (await refusal(sfn.startExecution({ stateMachineArn, name: "hold-1", input: '{"seconds":1}' }))).code,
    ).toBe("ExecutionAlreadyExists");
    expect((await refusal(sfn.startExecution({ stateMachineArn: machineArn("nope") }))).code).toBe(
      "StateMachineDoesNotExist",
    );
    expect((await refusal(sfn.startExecution({ stateMachineArn: "arn:aws:s3:::bucket" }))).code).toBe(
      "InvalidArn",
    );
    expect((await refusal(sfn.startExecution({ stateMachineArn, name: "node loss" }))).code).toBe(
      "InvalidName",
    );
    expect((await refusal(sfn.startExecution({ stateMachineArn, name: "a".repeat(81) }))).code).toBe(
      "InvalidName",
    );
    expect((await refusal(sfn.startExecution({ stateMachineArn, input: "{nope" }))).code).toBe(
      "InvalidExecutionInput",
    );
    expect(
      (await refusal(sfn.describeExecution({ executionArn: `${first.executionArn!.slice(0, -1)}9` }))).code,
    ).toBe("ExecutionDoesNotExist");

    // Once it has closed, the name is taken even with the same input.
    await sfn.stopExecution({ executionArn: first.executionArn });
    expect((await refusal(sfn.startExecution({ stateMachineArn, name: "hold-1", input }))).code).toBe(
      "ExecutionAlreadyExists",
    );
  });

  it("stops a running execution: ABORTED with the error and cause given, the Wait aborted", async () => {
    const changes: string[] = [];
    const sfn = await localStepFunctions(
      ["hold"],
      {},
      {
        onExecutionChange: (execution) => changes.push(execution.status!),
      },
    );
    const { executionArn } = await sfn.startExecution({
      stateMachineArn: machineArn("hold"),
      input: '{"seconds":3600}',
    });
    await sleep(20);
    const { stopDate } = await sfn.stopExecution({ executionArn, error: "Operator", cause: "superseded" });
    const execution = await sfn.describeExecution({ executionArn });
    expect(execution).toMatchObject({ status: "ABORTED", error: "Operator", cause: "superseded", stopDate });
    expect(types(await history(sfn, executionArn!)).slice(-3)).toEqual([
      "WaitStateEntered",
      "WaitStateAborted",
      "ExecutionAborted",
    ]);
    expect(changes).toEqual(["RUNNING", "ABORTED"]);
    // Stopping it again changes nothing.
    expect(await sfn.stopExecution({ executionArn, error: "Other" })).toEqual({ stopDate });
    expect((await sfn.describeExecution({ executionArn })).error).toBe("Operator");
  });

  it("times an execution out after the definition's TimeoutSeconds", async () => {
    const definition = parseDefinition(
      JSON.stringify({
        TimeoutSeconds: 1,
        StartAt: "Hold",
        States: { Hold: { Type: "Wait", Seconds: 60, End: true } },
      }),
    );
    const sfn = new LocalStepFunctions({
      stateMachines: [{ name: "slow", definition }],
      functions: new Map(),
    });
    running.push(sfn);
    const { executionArn } = await sfn.startExecution({ stateMachineArn: sfn.stateMachineArn("slow") });
    const execution = await closed(sfn, executionArn!);
    expect(execution).toMatchObject({ status: "TIMED_OUT", error: "States.Timeout" });
    expect(types(await history(sfn, executionArn!)).at(-1)).toBe("ExecutionTimedOut");
  });

  it("lists executions newest first, by status, a page at a time", async () => {
    const sfn = await localStepFunctions(["hold"], {});
    const stateMachineArn = machineArn("hold");
    const arns: string[] = [];
    for (let i = 0; i < 5; i++) {
      const { executionArn } = await sfn.startExecution({
        stateMachineArn,
        name: `hold-${i}`,
        input: JSON.stringify({ seconds: i < 3 ? 0 : 3600 }),
      });
      arns.push(executionArn!);
    }
    for (const arn of arns.slice(0, 3)) await closed(sfn, arn);

    const first = await sfn.listExecutions({ stateMachineArn, maxResults: 2 });
    expect(first.executions?.map((item) => item.name)).toEqual(["hold-4", "hold-3"]);
    // A newer execution does not shift the pages already handed out.
    await sfn.startExecution({ stateMachineArn, name: "hold-5", input: '{"seconds":3600}' });
    const second = await sfn.listExecutions({ stateMachineArn, maxResults: 2, nextToken: first.nextToken });
    expect(second.executions?.map((item) => item.name)).toEqual(["hold-2", "hold-1"]);
    const third = await sfn.listExecutions({ stateMachineArn, maxResults: 2, nextToken: second.nextToken });
    expect(third.executions?.map((item) => item.name)).toEqual(["hold-0"]);
    expect(third.nextToken).toBeUndefined();

    const runningNow = await sfn.listExecutions({ stateMachineArn, statusFilter: "RUNNING" });
    expect(runningNow.executions?.map((item) => item.name)).toEqual(["hold-5", "hold-4", "hold-3"]);
    expect(runningNow.executions?.[0]).toMatchObject({ stateMachineArn, status: "RUNNING" });
    const succeeded = await sfn.listExecutions({ stateMachineArn, statusFilter: "SUCCEEDED" });
    expect(succeeded.executions?.map((item) => item.name)).toEqual(["hold-2", "hold-1", "hold-0"]);
    expect(
      (
        await refusal(
          sfn.listExecutions({ stateMachineArn, statusFilter: "RUNNING", nextToken: first.nextToken }),
        )
      ).code,
    ).toBe("InvalidToken");
  });

  it("forgets the oldest closed executions beyond its bound, never a running one", async () => {
    const sfn = await localStepFunctions(["hold"], {}, { keptClosedExecutions: 2 });
    const stateMachineArn = machineArn("hold");
    const held = await sfn.startExecution({ stateMachineArn, name: "held", input: '{"seconds":3600}' });
    for (let i = 0; i < 4; i++) {
      const { executionArn } = await sfn.startExecution({
        stateMachineArn,
        name: `quick-${i}`,
        input: '{"seconds":0}',
      });
      await closed(sfn, executionArn!);
    }
    const listed = await sfn.listExecutions({ stateMachineArn });
    expect(listed.executions?.map((item) => item.name)).toEqual(["quick-3", "quick-2", "held"]);
    expect((await sfn.describeExecution({ executionArn: held.executionArn })).status).toBe("RUNNING");
  });

  it("aborts running executions when closed", async () => {
    const sfn = await localStepFunctions(["hold"], {});
    const { executionArn } = await sfn.startExecution({
      stateMachineArn: machineArn("hold"),
      input: '{"seconds":3600}',
    });
    await sfn.close();
    expect((await sfn.describeExecution({ executionArn })).status).toBe("ABORTED");
  });
});
