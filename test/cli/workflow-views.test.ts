/**
 * `strata workflow list/show` and `strata events`: the pure conversions (history → steps, bus
 * events → one-line summaries) and the commands against a real local Step Functions behind its
 * AWS-compatible endpoint, called with the real SDK client the CLI uses.
 */
import { execFile, spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import { appendFile, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import type { DescribeExecutionOutput, HistoryEvent } from "@aws-sdk/client-sfn";
import { CommanderError } from "commander";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { EventLog } from "../../cli/event-log.js";
import { matchesFilter, sinceArg, summarizeEvent } from "../../cli/event-views.js";
import { EXIT_USAGE, reportFailure } from "../../cli/failures.js";
import { buildProgram } from "../../cli/program.js";
import { errorMessageOf, formatDuration, workflowSteps } from "../../cli/workflow-steps.js";
import { stepTable, summarizeInput, workflowDescription } from "../../cli/workflow-views.js";
import { type LocalAwsEndpoints, startLocalAwsEndpoints } from "../../infra/local/aws/endpoints.js";
import { LocalEc2 } from "../../infra/local/aws/local-ec2.js";
import { writeClusterFile } from "../../infra/local/cluster-file.js";
import type { LocalStepFunctions } from "../../infra/local/step-functions/local-step-functions.js";
import { FakeEventBus } from "../local-cloud/aws-harness.js";
import { PACKAGE_ROOT } from "./strata-process.js";
import { closedExecution, FIXTURES, fixtureStepFunctions } from "./workflow-fixture.js";

const STRATA_BIN = join(PACKAGE_ROOT, "bin", "strata.mjs");

/** The history of a node-loss fixture run, recorded from LocalStepFunctions (see workflow-fixture.ts). */
function recorded(): { execution: DescribeExecutionOutput; events: HistoryEvent[] } {
  const revive = (key: string, value: unknown) =>
    typeof value === "string" && /(^timestamp$|Date$)/.test(key) ? new Date(value) : value;
  return JSON.parse(readFileSync(join(FIXTURES, "node-loss-failed.json"), "utf8"), revive);
}

let nextId = 1;
const at = (ms: number) => new Date(Date.parse("2026-12-03T08:00:00Z") + ms);
/** A hand-written AWS-shaped event, numbered in order. */
function event(type: string, ms: number, details: Omit<HistoryEvent, "id" | "type" | "timestamp"> = {}) {
  const id = nextId++;
  return { id, previousEventId: id - 1, type, timestamp: at(ms), ...details } as HistoryEvent;
}
const entered = (type: string, name: string, ms: number) =>
  event(`${type}StateEntered`, ms, { stateEnteredEventDetails: { name, input: "{}" } });
const exited = (type: string, name: string, ms: number) =>
  event(`${type}StateExited`, ms, { stateExitedEventDetails: { name, output: "{}" } });
const iteration = (kind: "Started" | "Succeeded" | "Failed", name: string, index: number, ms: number) =>
  event(`MapIteration${kind}`, ms, { [`mapIteration${kind}EventDetails`]: { name, index } });
const lambda = (outcome: "Succeeded" | "Failed", ms: number, message = "") => [
  event("LambdaFunctionScheduled", ms),
  event("LambdaFunctionStarted", ms),
  outcome === "Succeeded"
    ? event("LambdaFunctionSucceeded", ms + 5, { lambdaFunctionSucceededEventDetails: { output: "{}" } })
    : event("LambdaFunctionFailed", ms + 5, {
        lambdaFunctionFailedEventDetails: {
          error: "Strata.Transient",
          cause: JSON.stringify({ errorMessage: message, errorType: "Strata.Transient", trace: [] }),
        },
      }),
];

describe("workflow steps from an execution history", () => {
  it("turns a recorded history into one row per state, iterations named, failures explained", () => {
    const { execution, events } = recorded();
    const { steps, uncertainMaps } = workflowSteps(events, execution);
    expect(uncertainMaps).toEqual([]);
    expect(steps.map((step) => [step.name, step.type, step.status])).toEqual([
      ["PlanOperations", "Task", "retried"],
      ["RunOperations", "Map", "succeeded"],
      ...[0, 1].flatMap((index) => [
        [`RunOperations[${index}] › PollOperation`, "Task", "succeeded"],
        [`RunOperations[${index}] › Done?`, "Choice", "succeeded"],
        [`RunOperations[${index}] › PauseBeforePoll`, "Wait", "succeeded"],
        [`RunOperations[${index}] › PollOperation`, "Task", "succeeded"],
        [`RunOperations[${index}] › Done?`, "Choice", "succeeded"],
        [`RunOperations[${index}] › OperationDone`, "Succeed", "succeeded"],
      ]),
      ["ReportRecovery", "Task", "caught"],
      ["RecoveryFailed", "Fail", "failed"],
    ]);
    expect(steps[0]).toMatchObject({
      attempts: 2,
      error: { name: "Strata.Transient", message: "the state table is throttling" },
    });
    expect(steps.at(-2)).toMatchObject({
      attempts: 1,
      error: { name: "Strata.Refused", message: "node-2 still holds the lease of vol-a" },
    });
    expect(steps.at(-1)).toMatchObject({
      error: { name: "Strata.RecoveryFailed", message: "the recovery could not be reported" },
    });
    expect(steps[2]!.iterations).toEqual([{ map: "RunOperations", index: 0 }]);
    // Offsets and durations come from the events' timestamps, relative to the execution's start.
    const start = execution.startDate!.getTime();
    const reportEntered = events.find((e) => e.stateEnteredEventDetails?.name === "ReportRecovery")!;
    expect(steps.at(-2)!.startedAfterMs).toBe(reportEntered.timestamp!.getTime() - start);
    const mapEntered = events.find((e) => e.type === "MapStateEntered")!;
    const mapExited = events.find((e) => e.type === "MapStateExited")!;
    expect(steps[1]!.durationMs).toBe(mapExited.timestamp!.getTime() - mapEntered.timestamp!.getTime());
  });

  it("places interleaved iterations of a concurrent Map by which one is idle", () => {
    nextId = 1;
    const events = [
      event("ExecutionStarted", 0),
      entered("Map", "Fence", 1),
      event("MapStateStarted", 1),
      iteration("Started", "Fence", 0, 2),
      iteration("Started", "Fence", 1, 2),
      entered("Task", "FenceNode", 3),
      ...lambda("Succeeded", 3),
      entered("Task", "FenceNode", 4),
      ...lambda("Failed", 4, "the agent did not answer"),
      exited("Task", "FenceNode", 10),
      iteration("Succeeded", "Fence", 0, 11),
      ...lambda("Succeeded", 1000),
      exited("Task", "FenceNode", 1010),
      iteration("Succeeded", "Fence", 1, 1011),
      event("MapStateSucceeded", 1012),
      exited("Map", "Fence", 1012),
      entered("Succeed", "Done", 1013),
      exited("Succeed", "Done", 1013),
      event("ExecutionSucceeded", 1014),
    ];
    const { steps, uncertainMaps } = workflowSteps(events, {
      status: "SUCCEEDED",
      startDate: at(0),
      stopDate: at(1014),
    });
    expect(uncertainMaps).toEqual(["Fence"]);
    expect(steps.map((step) => [step.name, step.status, step.attempts, step.durationMs])).toEqual([
      ["Fence", "succeeded", 0, 1011],
      ["Fence[0] › FenceNode", "succeeded", 1, 7],
      ["Fence[1] › FenceNode", "retried", 2, 1006],
      ["Done", "succeeded", 0, 0],
    ]);
    expect(steps[2]!.error?.message).toBe("the agent did not answer");
    expect(
      workflowDescription(
        {
          executionArn: "arn:aws:states:local:000000000000:execution:strata-az-failure:x",
          stateMachineArn: "arn:aws:states:local:000000000000:stateMachine:strata-az-failure",
          status: "SUCCEEDED",
          startDate: at(0),
        },
        steps,
        uncertainMaps,
      ),
    ).toMatch(
      /^Note: iterations of Fence ran at the same time, .* rows of the same state may be swapped between iterations\.$/m,
    );
  });

  it("follows previousEventId when the history chains each iteration's events", () => {
    // As AWS chains them: each event points at the one before it in its own iteration.
    const chained = (id: number, previousEventId: number, type: string, details: object = {}) =>
      ({ id, previousEventId, type, timestamp: at(id * 10), ...details }) as HistoryEvent;
    const enter = (id: number, prev: number, type: string, name: string) =>
      chained(id, prev, `${type}StateEntered`, { stateEnteredEventDetails: { name, input: "{}" } });
    const exit = (id: number, prev: number, type: string, name: string) =>
      chained(id, prev, `${type}StateExited`, { stateExitedEventDetails: { name, output: "{}" } });
    const started = (id: number, prev: number, index: number) =>
      chained(id, prev, "MapIterationStarted", { mapIterationStartedEventDetails: { name: "Fence", index } });
    const succeeded = (id: number, prev: number, index: number) =>
      chained(id, prev, "MapIterationSucceeded", {
        mapIterationSucceededEventDetails: { name: "Fence", index },
      });
    const failed = (id: number, prev: number) =>
      chained(id, prev, "LambdaFunctionFailed", {
        lambdaFunctionFailedEventDetails: {
          error: "Strata.Refused",
          cause: '{"errorMessage":"node-3 is up"}',
        },
      });
    const events = [
      chained(1, 0, "ExecutionStarted"),
      enter(2, 1, "Map", "Fence"),
      chained(3, 2, "MapStateStarted"),
      started(4, 3, 0),
      started(5, 3, 1),
      enter(6, 5, "Task", "FenceNode"), // iteration 1 enters first
      enter(7, 4, "Task", "FenceNode"),
      chained(8, 6, "LambdaFunctionScheduled"),
      chained(9, 7, "LambdaFunctionScheduled"),
      chained(10, 9, "LambdaFunctionSucceeded"), // iteration 0's call ends first
      exit(11, 10, "Task", "FenceNode"),
      succeeded(12, 11, 0),
      failed(13, 8),
      chained(14, 13, "MapIterationFailed", { mapIterationFailedEventDetails: { name: "Fence", index: 1 } }),
      chained(15, 14, "MapStateFailed"),
      exit(16, 15, "Map", "Fence"),
      enter(17, 16, "Fail", "NotFenced"),
      chained(18, 17, "ExecutionFailed"),
    ];
    const { steps, uncertainMaps } = workflowSteps(events, {
      status: "FAILED",
      startDate: at(10),
      stopDate: at(180),
    });
    expect(uncertainMaps).toEqual([]);
    expect(steps.map((step) => [step.name, step.status, step.error?.message])).toEqual([
      ["Fence", "caught", undefined],
      ["Fence[1] › FenceNode", "failed", "node-3 is up"],
      ["Fence[0] › FenceNode", "succeeded", undefined],
      ["NotFenced", "failed", undefined],
    ]);
  });

  it("shows the states an execution is in as running, or as it was stopped", () => {
    nextId = 1;
    const events = [event("ExecutionStarted", 0), entered("Wait", "PauseBeforePoll", 100)];
    const { steps: running } = workflowSteps(
      events,
      { status: "RUNNING", startDate: at(0) },
      at(3100).getTime(),
    );
    expect(running).toMatchObject([{ name: "PauseBeforePoll", status: "running", durationMs: 3000 }]);
    expect(stepTable(running)).toMatch(/^PauseBeforePoll\s+Wait\s+running\s+\+100 ms\s+3\.0 s so far\s+-$/m);
    const { steps: stopped } = workflowSteps(events, {
      status: "ABORTED",
      startDate: at(0),
      stopDate: at(600),
    });
    expect(stopped).toMatchObject([{ status: "aborted", durationMs: 500 }]);
  });

  it("shows a Lambda error's message, and any other cause as it is", () => {
    expect(
      errorMessageOf(JSON.stringify({ errorMessage: "no such volume", errorType: "Strata.Refused" })),
    ).toBe("no such volume");
    expect(errorMessageOf("the node could not be fenced")).toBe("the node could not be fenced");
    expect(errorMessageOf(undefined)).toBeUndefined();
  });

  it("formats durations for people", () => {
    expect(formatDuration(12)).toBe("12 ms");
    expect(formatDuration(4250)).toBe("4.2 s");
    expect(formatDuration(42_000)).toBe("42 s");
    expect(formatDuration(185_000)).toBe("3 min 5 s");
    expect(formatDuration(120_000)).toBe("2 min");
    expect(formatDuration(2 * 3600_000 + 7 * 60_000)).toBe("2 h 7 min");
  });

  it("describes an execution: header with input and cause, then the steps", () => {
    const { execution, events } = recorded();
    const text = workflowDescription(execution, workflowSteps(events, execution).steps);
    expect(text).toMatch(/^Name:\s+node-loss-node-2-1764745200$/m);
    expect(text).toMatch(/^Workflow:\s+node-loss$/m);
    expect(text).toMatch(/^Status:\s+FAILED$/m);
    expect(text).toMatch(/^Input:\s+nodeId=node-2, reason=no heartbeat for 12s$/m);
    expect(text).toMatch(/^Error:\s+Strata.RecoveryFailed$/m);
    expect(text).toMatch(/^Cause:\s+the recovery could not be reported$/m);
    expect(text).toMatch(/^ {2}STATE\s+TYPE\s+STATUS\s+STARTED\s+DURATION\s+DETAIL$/m);
    expect(text).toMatch(
      /^ {2}PlanOperations\s+Task\s+retried\s+\+\d+ ms\s+\d+ ms\s+2 attempts; Strata.Transient: the state table is throttling$/m,
    );
    expect(text).toMatch(/^ {2}RunOperations\[1\] › PollOperation\s+Task\s+succeeded\s/m);
    expect(text).toMatch(
      /^ {2}ReportRecovery\s+Task\s+caught\s.*Strata.Refused: node-2 still holds the lease/m,
    );
  });

  it("summarizes an input on one line, cutting a long one", () => {
    expect(summarizeInput('{"zone":"local-b","phase":"restore","nodes":["n1"]}')).toBe(
      'zone=local-b, phase=restore, nodes=["n1"]',
    );
    expect(summarizeInput(JSON.stringify({ reason: "x".repeat(200) }))).toHaveLength(100);
    expect(summarizeInput(undefined)).toBe("-");
  });
});

interface Outcome {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs `strata` in this process, as bin/strata.mjs would (cli/main.ts's exit statuses). */
async function strata(...args: string[]): Promise<Outcome> {
  let stdout = "";
  let stderr = "";
  const out = vi.spyOn(process.stdout, "write").mockImplementation((chunk) => {
    stdout += String(chunk);
    return true;
  });
  const err = vi.spyOn(process.stderr, "write").mockImplementation((chunk) => {
    stderr += String(chunk);
    return true;
  });
  let code = 0;
  try {
    await buildProgram().parseAsync(["node", "strata", "--dir", dir, ...args]);
  } catch (error) {
    if (error instanceof CommanderError) code = error.exitCode === 0 ? 0 : EXIT_USAGE;
    else
      code = reportFailure(error, {
        write: (chunk: string) => {
          stderr += chunk;
          return true;
        },
      } as NodeJS.WritableStream);
  } finally {
    out.mockRestore();
    err.mockRestore();
  }
  return { code, stdout, stderr };
}

let dir: string;
let sfn: LocalStepFunctions;
let endpoints: LocalAwsEndpoints;
let ec2: LocalEc2;

/** The fixture's Step Functions behind the local AWS endpoints, and a directory for the cluster file. */
async function startFixture(prefix: string): Promise<void> {
  dir = await mkdtemp(join(tmpdir(), prefix));
  sfn = await fixtureStepFunctions();
  ec2 = LocalEc2.create({ clusterName: "strata-test", nodegroups: [{ zone: "local-a" }] });
  endpoints = await startLocalAwsEndpoints({ stepFunctions: sfn, eventBus: new FakeEventBus(), ec2 });
}

async function stopFixture(): Promise<void> {
  await sfn?.close();
  await endpoints?.close();
  ec2?.close();
  await rm(dir, { recursive: true, force: true });
}

describe("strata workflow list/show against the local Step Functions endpoint", () => {
  beforeAll(async () => {
    await startFixture("strata-workflow-views-");
    await writeClusterFile(dir, {
      pid: process.pid,
      startedAt: new Date().toISOString(),
      dynamodb: { endpoint: "http://127.0.0.1:1", table: "strata" },
      cloud: { clusterName: "strata-test", endpoints: endpoints.environment },
      nodes: [
        {
          id: "node-1",
          zone: "local-a",
          apiUrl: "http://127.0.0.1:1",
          nbdAddress: "127.0.0.1:1",
          nbdSocket: null,
          dataDir: join(dir, "nodes", "node-1"),
        },
      ],
    });
  });

  afterAll(stopFixture);

  it("says so when no workflow has run", async () => {
    expect(await strata("workflow", "list")).toEqual({
      code: 0,
      stdout: "No workflows have run.\n",
      stderr: "",
    });
    expect(JSON.parse((await strata("workflow", "list", "--json")).stdout)).toEqual({ executions: [] });
  });

  it("lists both workflows' executions newest first, filtered by status and workflow", async () => {
    const run = async (machine: string, name: string, input: object) => {
      const { executionArn } = await sfn.startExecution({
        stateMachineArn: sfn.stateMachineArn(machine),
        name,
        input: JSON.stringify(input),
      });
      return closedExecution(sfn, executionArn!);
    };
    await run("strata-node-loss", "node-loss-node-2", { nodeId: "node-2", reason: "no heartbeat for 12s" });
    await run("strata-az-failure", "az-failure-local-b", { zone: "local-b" });

    const table = await strata("workflow", "list");
    expect(table.code).toBe(0);
    const [header, ...rows] = table.stdout.trimEnd().split("\n");
    expect(header).toMatch(/^NAME\s+WORKFLOW\s+STATUS\s+STARTED\s+DURATION$/);
    expect(rows).toHaveLength(2);
    expect(rows[0]).toMatch(/^az-failure-local-b\s+az-failure\s+SUCCEEDED\s+\d\d:\d\d:\d\d\s+\d+ ms$/);
    expect(rows[1]).toMatch(/^node-loss-node-2\s+node-loss\s+FAILED\s+\d\d:\d\d:\d\d\s+\d+ ms$/);

    const failed = JSON.parse((await strata("workflow", "list", "--status", "FAILED", "--json")).stdout) as {
      executions: { name: string; workflow: string; executionArn: string }[];
    };
    expect(failed.executions).toEqual([
      expect.objectContaining({
        name: "node-loss-node-2",
        workflow: "node-loss",
        executionArn: "arn:aws:states:local:000000000000:execution:strata-node-loss:node-loss-node-2",
      }),
    ]);
    expect((await strata("workflow", "list", "--workflow", "az-failure", "--status", "FAILED")).stdout).toBe(
      "No FAILED az-failure executions.\n",
    );
    const bad = await strata("workflow", "list", "--status", "DONE");
    expect(bad.code).toBe(EXIT_USAGE);
  });

  it("shows an execution found by name or ARN, with its steps", async () => {
    const shown = await strata("workflow", "show", "node-loss-node-2");
    expect(shown.code).toBe(0);
    expect(shown.stdout).toMatch(/^Status:\s+FAILED$/m);
    expect(shown.stdout).toMatch(/^Cause:\s+the recovery could not be reported$/m);
    expect(shown.stdout).toMatch(/^ {2}RunOperations\[0\] › PauseBeforePoll\s+Wait\s+succeeded\s/m);
    expect(shown.stdout).toMatch(
      /^ {2}ReportRecovery\s+Task\s+caught\s.*node-2 still holds the lease of vol-a$/m,
    );

    const arn = "arn:aws:states:local:000000000000:execution:strata-az-failure:az-failure-local-b";
    const json = JSON.parse((await strata("workflow", "show", arn, "--json")).stdout) as {
      execution: { status: string };
      steps: { name: string; status: string }[];
    };
    expect(json.execution.status).toBe("SUCCEEDED");
    expect(json.steps).toEqual([expect.objectContaining({ name: "Describe", status: "succeeded" })]);
  });

  it("refuses an unknown execution in one sentence, and a name both workflows have", async () => {
    expect(await strata("workflow", "show", "node-loss-node-9")).toEqual({
      code: 1,
      stdout: "",
      stderr: 'error: no workflow execution named "node-loss-node-9"\n',
    });
    expect((await strata("workflow", "show", "bad:name")).stderr).toBe(
      'error: no workflow execution named "bad:name"\n',
    );
    for (const machine of ["strata-node-loss", "strata-az-failure"]) {
      const { executionArn } = await sfn.startExecution({
        stateMachineArn: sfn.stateMachineArn(machine),
        name: "twice",
        input: JSON.stringify({ nodeId: "node-3", zone: "local-c" }),
      });
      await closedExecution(sfn, executionArn!);
    }
    const both = await strata("workflow", "show", "twice");
    expect(both.code).toBe(1);
    expect(both.stderr).toMatch(
      /^error: both workflows have an execution named "twice": give its ARN, arn:.*\n$/,
    );
  });
});

describe("strata --api: the workflows of the control plane deployed in AWS", () => {
  // The AWS environment as an operator has it, the endpoint pointing at the local Step Functions:
  // the CLI finds the state machines by name, as it must in an account it knows nothing of.
  const environment = () => ({
    AWS_ENDPOINT_URL_SFN: endpoints.environment.AWS_ENDPOINT_URL_SFN!,
    AWS_REGION: "local",
    AWS_ACCESS_KEY_ID: "operator",
    AWS_SECRET_ACCESS_KEY: "operator",
  });
  const withEnvironment = async <T>(variables: Record<string, string | undefined>, run: () => Promise<T>) => {
    const saved = Object.fromEntries(Object.keys(variables).map((name) => [name, process.env[name]]));
    const assign = (values: Record<string, string | undefined>) => {
      for (const [name, value] of Object.entries(values)) {
        if (value === undefined) delete process.env[name];
        else process.env[name] = value;
      }
    };
    assign(variables);
    try {
      return await run();
    } finally {
      assign(saved);
    }
  };
  // An agent's API that is never called: --api only says the cluster is not a local one.
  const remote = ["--api", "http://127.0.0.1:1"];

  beforeAll(async () => {
    await startFixture("strata-workflow-aws-");
    const { executionArn } = await sfn.startExecution({
      stateMachineArn: sfn.stateMachineArn("strata-az-failure"),
      name: "az-failure-local-b",
      input: JSON.stringify({ zone: "local-b" }),
    });
    await closedExecution(sfn, executionArn!);
  });

  afterAll(stopFixture);

  it("lists and shows executions with no local cluster, by the deployed state machines' names", async () => {
    await withEnvironment(environment(), async () => {
      const listed = await strata(...remote, "workflow", "list", "--json");
      expect(listed.stderr).toBe("");
      const { executions } = JSON.parse(listed.stdout) as { executions: { status: string }[] };
      expect({ executions }).toEqual({
        executions: [
          expect.objectContaining({
            name: "az-failure-local-b",
            workflow: "az-failure",
            executionArn: "arn:aws:states:local:000000000000:execution:strata-az-failure:az-failure-local-b",
          }),
        ],
      });
      const shown = await strata(...remote, "workflow", "show", "az-failure-local-b");
      expect(shown.code).toBe(0);
      expect(shown.stdout).toMatch(/^Name:\s+az-failure-local-b$/m);
      expect(shown.stdout).toMatch(new RegExp(`^Status:\\s+${executions[0]!.status}$`, "m"));
    });
  });

  it("says in one sentence that no control plane has the prefix, or that no region is set", async () => {
    await withEnvironment(environment(), async () => {
      expect(await strata(...remote, "--stack-prefix", "prod", "workflow", "list")).toEqual({
        code: 1,
        stdout: "",
        stderr:
          "error: Step Functions in local has no Strata state machines named prod-node-loss and so on: deploy the control plane there (docs/deploy-aws.md), or give its prefix with --stack-prefix\n",
      });
    });
    await withEnvironment(
      { ...environment(), AWS_REGION: undefined, AWS_DEFAULT_REGION: undefined },
      async () => {
        expect((await strata(...remote, "workflow", "list")).stderr).toBe(
          "error: set AWS_REGION to the region the Strata control plane is deployed in\n",
        );
      },
    );
  });
});

/** An envelope as the local bus logs it. */
function busEvent(
  source: string,
  detailType: string,
  detail: Record<string, unknown>,
  time = "2026-12-03T07:00:05Z",
) {
  return {
    version: "0",
    id: `event-${nextId++}`,
    "detail-type": detailType,
    source,
    account: "000000000000",
    time,
    region: "local",
    resources: [],
    detail,
  };
}

const NODE_OFFLINE = busEvent("strata", "Strata Node Offline", {
  clusterName: "strata-local",
  nodeId: "node-2",
  zone: "local-b",
  reason: "no heartbeat for 12s",
  observedAt: "2026-12-03T07:00:05Z",
});
const TERMINATED = busEvent("aws.ec2", "EC2 Instance State-change Notification", {
  "instance-id": "i-0abc1234",
  state: "terminated",
});
const FINISHED = busEvent("strata", "Strata Recovery Finished", {
  clusterName: "strata-local",
  workflow: "node-loss",
  execution: "node-loss-node-2",
  subject: "node-2",
  restored: ["vol-a", "vol-b", "vol-c", "vol-d", "vol-e"],
  failed: [{ volume: "vol-x", reason: "no node with room for 10 GiB" }],
});

describe("event summaries", () => {
  it("says in one line what happened to what, per detail type", () => {
    expect(summarizeEvent(NODE_OFFLINE)).toBe("node-2 (local-b): no heartbeat for 12s");
    expect(
      summarizeEvent(
        busEvent("strata", "Strata Zone Offline", { zone: "local-b", reason: "2 of 3 nodes offline" }),
      ),
    ).toBe("local-b: 2 of 3 nodes offline");
    expect(summarizeEvent(TERMINATED)).toBe("i-0abc1234 terminated");
    expect(
      summarizeEvent(
        busEvent("aws.autoscaling", "EC2 Instance-terminate Lifecycle Action", {
          LifecycleActionToken: "t-1",
          AutoScalingGroupName: "strata-local-b",
          LifecycleHookName: "strata-drain",
          EC2InstanceId: "i-0abc1234",
          LifecycleTransition: "autoscaling:EC2_INSTANCE_TERMINATING",
        }),
      ),
    ).toBe("i-0abc1234 terminating (hook strata-drain, group strata-local-b)");
    expect(
      summarizeEvent(
        busEvent("strata", "Strata Volume Redundancy Restored", {
          volume: "vol-a",
          how: "re-replicated",
          bytesCopied: 256 * 1024 * 1024,
          execution: "node-loss-node-2",
        }),
      ),
    ).toBe("vol-a re-replicated, 256 MiB copied");
    expect(summarizeEvent(FINISHED)).toBe(
      "node-loss of node-2: 5 restored, 1 failed (vol-x: no node with room for 10 GiB)",
    );
    expect(
      summarizeEvent({
        ...FINISHED,
        detail: { ...FINISHED.detail, failed: [], error: "Strata.Refused: no lease" },
      }),
    ).toBe("node-loss of node-2: 5 restored, 0 failed; stopped short: Strata.Refused: no lease");
  });

  it("says which cloudsnap a volume got or why it did not, and what a restore made", () => {
    const common = { clusterName: "local", execution: "scheduled-1", volume: "pg-data" };
    const id = "cac99368-ba9a-4536-a6b4-a174f30f092f-20261203T141601671Z";
    const completed = { ...common, cloudsnap: id, schedule: "interval", expired: ["a", "b"] };
    expect(summarizeEvent(busEvent("strata", "Strata Cloudsnap Completed", completed))).toBe(
      `pg-data: ${id} (interval), 2 expired`,
    );
    expect(
      summarizeEvent(
        busEvent("strata", "Strata Cloudsnap Completed", {
          ...completed,
          schedule: undefined,
          expired: [],
          retentionError: "Strata.Transient: the bucket is unreachable",
        }),
      ),
    ).toBe(`pg-data: ${id} (by hand); retention stopped: Strata.Transient: the bucket is unreachable`);
    const group = { ...completed, cloudsnaps: [id, `${id}-wal`], expired: [] };
    expect(summarizeEvent(busEvent("strata", "Strata Cloudsnap Completed", group))).toBe(
      `pg-data: ${id} (interval) with 1 more of its group, 0 expired`,
    );
    expect(
      summarizeEvent(
        busEvent("strata", "Strata Cloudsnap Failed", {
          ...common,
          schedule: "daily",
          reason: "hook failed",
        }),
      ),
    ).toBe("pg-data (daily): hook failed");
    const snapshot = { ...common, volumes: ["pg-data", "pg-wal"], snapshot: "daily-20261203T0200Z" };
    expect(
      summarizeEvent(
        busEvent("strata", "Strata Snapshot Completed", { ...snapshot, expired: ["pg-data@daily-x"] }),
      ),
    ).toBe("pg-data, pg-wal: snapshot daily-20261203T0200Z, 1 expired");
    const restore = { ...common, volume: "pg-copy", cloudsnap: id };
    expect(summarizeEvent(busEvent("strata", "Strata Restore Completed", restore))).toBe(
      `pg-copy from ${id}`,
    );
    expect(
      summarizeEvent(busEvent("strata", "Strata Restore Failed", { ...restore, reason: "no live node" })),
    ).toBe(`pg-copy from ${id}: no live node`);
  });

  it("lists the detail's keys for a type it does not know, or one missing its fields", () => {
    expect(summarizeEvent(busEvent("custom.app", "Something Happened", { a: 1, b: "x" }))).toBe("{a, b}");
    expect(summarizeEvent(busEvent("aws.ec2", "EC2 Instance State-change Notification", { state: 5 }))).toBe(
      "{state}",
    );
    expect(summarizeEvent(busEvent("aws.events", "Scheduled Event", {}))).toBe("-");
  });

  it("takes --since as a duration or an ISO time, and refuses anything else as usage", () => {
    const now = Date.parse("2026-12-03T08:00:00Z");
    expect(sinceArg("10m", now)).toBe(now - 600_000);
    expect(sinceArg("2h", now)).toBe(now - 7_200_000);
    expect(sinceArg("2026-12-03T07:00:00Z", now)).toBe(Date.parse("2026-12-03T07:00:00Z"));
    expect(() => sinceArg("yesterday", now)).toThrow(expect.objectContaining({ exitCode: EXIT_USAGE }));
    expect(matchesFilter(NODE_OFFLINE, { since: Date.parse("2026-12-03T07:00:06Z") })).toBe(false);
    expect(matchesFilter(NODE_OFFLINE, { since: Date.parse("2026-12-03T07:00:05Z"), source: "strata" })).toBe(
      true,
    );
    expect(matchesFilter(TERMINATED, { source: "strata" })).toBe(false);
  });
});

describe("the event log", () => {
  it("reads what was appended since the last read, a torn line once it is whole", async () => {
    const logDir = await mkdtemp(join(tmpdir(), "strata-event-log-"));
    try {
      const path = join(logDir, "events.jsonl");
      const log = new EventLog(path);
      expect(await log.readNew()).toEqual([]);
      const second = JSON.stringify(TERMINATED);
      await writeFile(path, `${JSON.stringify(NODE_OFFLINE)}\n${second.slice(0, 20)}`);
      expect((await log.readNew()).map((event) => event.id)).toEqual([NODE_OFFLINE.id]);
      await appendFile(path, `${second.slice(20)}\nnot json\n`);
      expect((await log.readNew()).map((event) => event.id)).toEqual([TERMINATED.id]);
      expect(await log.readNew()).toEqual([]);
      // A new cluster in the same directory starts the log again.
      await writeFile(path, `${JSON.stringify(FINISHED)}\n`);
      expect((await log.readNew()).map((event) => event.id)).toEqual([FINISHED.id]);

      const stop = new AbortController();
      const seen: string[] = [];
      const following = log.follow(
        (events) => seen.push(...events.map((event) => event.id ?? "")),
        stop.signal,
        20,
      );
      await appendFile(path, `${JSON.stringify(NODE_OFFLINE)}\n`);
      await vi.waitFor(() => expect(seen).toEqual([NODE_OFFLINE.id]), { timeout: 2000 });
      stop.abort();
      await following;
    } finally {
      await rm(logDir, { recursive: true, force: true });
    }
  });
});

describe("strata events", () => {
  let eventsDir: string;
  const cli = (...args: string[]) => strataBinary(["--dir", eventsDir, ...args]);

  beforeAll(async () => {
    await promisify(execFile)(process.execPath, ["scripts/build.mjs"], { cwd: PACKAGE_ROOT });
    eventsDir = await mkdtemp(join(tmpdir(), "strata-events-"));
  });
  afterAll(async () => {
    await rm(eventsDir, { recursive: true, force: true });
  });

  it("prints the bus's events as a table, as JSON lines, filtered; none yet without a log", async () => {
    expect(await cli("events")).toEqual({ code: 0, stdout: "No events yet.\n", stderr: "" });
    await writeFile(
      join(eventsDir, "events.jsonl"),
      [NODE_OFFLINE, TERMINATED, FINISHED].map((event) => `${JSON.stringify(event)}\n`).join(""),
    );
    const table = await cli("events");
    expect(table.code).toBe(0);
    const [header, ...rows] = table.stdout.trimEnd().split("\n");
    expect(header).toMatch(/^TIME\s+SOURCE\s+DETAIL-TYPE\s+SUMMARY$/);
    expect(rows).toHaveLength(3);
    expect(rows[0]).toMatch(
      /^\d\d:\d\d:05\s+strata\s+Strata Node Offline\s+node-2 \(local-b\): no heartbeat for 12s$/,
    );
    expect(rows[1]).toMatch(
      /^\d\d:\d\d:05\s+aws\.ec2\s+EC2 Instance State-change Notification\s+i-0abc1234 terminated$/,
    );

    const lines = (await cli("events", "--json", "--source", "strata")).stdout.trimEnd().split("\n");
    expect(lines.map((line) => JSON.parse(line))).toEqual([NODE_OFFLINE, FINISHED]);
    expect((await cli("events", "--since", "1m")).stdout).toBe("No matching events.\n");
    const bad = await cli("events", "--since", "soon");
    expect(bad).toMatchObject({ code: EXIT_USAGE, stdout: "" });
    expect(bad.stderr).toMatch(/^error: invalid --since "soon"/);
  });

  it("follows the log as lines are appended, and stops cleanly on Ctrl-C", async () => {
    const child = spawn(
      process.execPath,
      [STRATA_BIN, "--dir", eventsDir, "events", "-f", "--source", "strata"],
      {
        stdio: ["ignore", "pipe", "pipe"],
      },
    );
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (chunk) => {
      stdout += String(chunk);
    });
    child.stderr.on("data", (chunk) => {
      stderr += String(chunk);
    });
    const exited = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)));
    try {
      await vi.waitFor(() => expect(stdout).toContain("node-loss of node-2: 5 restored"), { timeout: 5000 });
      expect(stdout.split("\n")[0]).toMatch(/^TIME\s+SOURCE\s+DETAIL-TYPE\s+SUMMARY$/);
      const restored = busEvent("strata", "Strata Volume Redundancy Restored", {
        volume: "vol-q",
        how: "resynced",
        bytesCopied: 1024,
      });
      await appendFile(
        join(eventsDir, "events.jsonl"),
        `${JSON.stringify(TERMINATED)}\n${JSON.stringify(restored)}\n`,
      );
      await vi.waitFor(() => expect(stdout).toContain("vol-q resynced, 1 KiB copied"), { timeout: 5000 });
      expect(stdout).not.toContain("i-0abc1234");
      child.kill("SIGINT");
      expect(await exited).toBe(0);
      expect(stderr).toBe("");
    } finally {
      child.kill("SIGKILL");
    }
  });
});

async function strataBinary(args: string[]): Promise<Outcome> {
  return new Promise((resolve) => {
    execFile(process.execPath, [STRATA_BIN, ...args], { cwd: PACKAGE_ROOT }, (error, stdout, stderr) => {
      resolve({ code: error ? (typeof error.code === "number" ? error.code : -1) : 0, stdout, stderr });
    });
  });
}
