/**
 * `strata workflow list/show` and `strata events`: the pure conversions (history → steps, bus
 * events → one-line summaries) and the commands against a real local Step Functions behind its
 * AWS-compatible endpoint, called with the real SDK client the CLI uses.
 */
import { readFileSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { DescribeExecutionOutput, HistoryEvent } from "@aws-sdk/client-sfn";
import { CommanderError } from "commander";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { EXIT_USAGE, reportFailure } from "../../cli/failures.js";
import { buildProgram } from "../../cli/program.js";
import { errorMessageOf, formatDuration, workflowSteps } from "../../cli/workflow-steps.js";
import { stepTable, summarizeInput, workflowDescription } from "../../cli/workflow-views.js";
import { type LocalAwsEndpoints, startLocalAwsEndpoints } from "../../infra/local/aws/endpoints.js";
import { LocalEc2 } from "../../infra/local/aws/local-ec2.js";
import { writeClusterFile } from "../../infra/local/cluster-file.js";
import type { LocalStepFunctions } from "../../infra/local/step-functions/local-step-functions.js";
import { FakeEventBus } from "../local-cloud/aws-harness.js";
import { closedExecution, FIXTURES, fixtureStepFunctions } from "./workflow-fixture.js";

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
    const steps = workflowSteps(events, execution);
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
    const steps = workflowSteps(events, { status: "SUCCEEDED", startDate: at(0), stopDate: at(1014) });
    expect(steps.map((step) => [step.name, step.status, step.attempts, step.durationMs])).toEqual([
      ["Fence", "succeeded", 0, 1011],
      ["Fence[0] › FenceNode", "succeeded", 1, 7],
      ["Fence[1] › FenceNode", "retried", 2, 1006],
      ["Done", "succeeded", 0, 0],
    ]);
    expect(steps[2]!.error?.message).toBe("the agent did not answer");
  });

  it("shows the states an execution is in as running, or as it was stopped", () => {
    nextId = 1;
    const events = [event("ExecutionStarted", 0), entered("Wait", "PauseBeforePoll", 100)];
    const running = workflowSteps(events, { status: "RUNNING", startDate: at(0) }, at(3100).getTime());
    expect(running).toMatchObject([{ name: "PauseBeforePoll", status: "running", durationMs: 3000 }]);
    expect(stepTable(running)).toMatch(/^PauseBeforePoll\s+Wait\s+running\s+\+100 ms\s+3\.0 s so far\s+-$/m);
    const stopped = workflowSteps(events, { status: "ABORTED", startDate: at(0), stopDate: at(600) });
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
    const text = workflowDescription(execution, workflowSteps(events, execution));
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

describe("strata workflow list/show against the local Step Functions endpoint", () => {
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "strata-workflow-views-"));
    sfn = await fixtureStepFunctions();
    ec2 = LocalEc2.create({ clusterName: "strata-test", nodegroups: [{ zone: "local-a" }] });
    endpoints = await startLocalAwsEndpoints({ stepFunctions: sfn, eventBus: new FakeEventBus(), ec2 });
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

  afterAll(async () => {
    await sfn?.close();
    await endpoints?.close();
    ec2?.close();
    await rm(dir, { recursive: true, force: true });
  });

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
    await new Promise((resolve) => setTimeout(resolve, 1100)); // start dates are kept to the second
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
