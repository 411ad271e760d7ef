import { setTimeout as sleep } from "node:timers/promises";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import {
  type OperationExecutors,
  OperationRunner,
  RESTARTED_WHILE_RUNNING,
} from "../../agent/operations/runner.js";
import type { LocalDynamoDb } from "../../core/state/local-dynamodb.js";
import type { NewOperation } from "../../core/state/operations.js";
import type { OperationRecord } from "../../core/state/records.js";
import type { StateStore } from "../../core/state/store.js";
import { capturingLogger } from "../api/harness.js";
import { freshStore, startDynamoDb } from "../core/state-harness.js";

let dynamoDb: LocalDynamoDb;
let store: StateStore;
const runners: OperationRunner[] = [];
let tokens = 0;

beforeAll(async () => {
  dynamoDb = await startDynamoDb();
  store = await freshStore();
});

afterEach(async () => {
  await Promise.all(runners.splice(0).map((runner) => runner.stop()));
});

afterAll(async () => {
  store.close();
  await dynamoDb.close();
});

function startRunner(node: string, executors: OperationExecutors): OperationRunner {
  const runner = new OperationRunner({
    operations: store.operations,
    node,
    executors,
    log: capturingLogger().log,
    pollIntervalMs: 50,
    progressIntervalMs: 50,
  });
  runners.push(runner);
  runner.start();
  return runner;
}

const start = (node: string, overrides: Partial<NewOperation> = {}) =>
  store.operations.start({
    requestToken: `runner-test-${++tokens}`,
    kind: "rebuild",
    volumeId: "vol-1",
    volumeName: "pg-data",
    node,
    params: { replicaId: "r-2" },
    ...overrides,
  });

async function until(
  id: string,
  done: (operation: OperationRecord) => boolean,
  what: string,
): Promise<OperationRecord> {
  const deadline = Date.now() + 10_000;
  for (;;) {
    const operation = await store.operations.get(id);
    if (done(operation)) return operation;
    if (Date.now() > deadline) throw new Error(`gave up waiting for ${what}: ${JSON.stringify(operation)}`);
    await sleep(25);
  }
}
const ended = (id: string) => until(id, (op) => op.endedAt !== null, "the operation to end");

/** Resolves once the signal is aborted, rejecting like real work cut short does. */
const untilAborted = (signal: AbortSignal) =>
  new Promise<void>((_, reject) => signal.addEventListener("abort", () => reject(signal.reason)));

describe("the operation runner", () => {
  it("runs an operation once when two runners of one node race for it", async () => {
    const runs: string[] = [];
    const executors: OperationExecutors = {
      rebuild: async (operation) => {
        runs.push(operation.id);
        await sleep(100);
      },
    };
    startRunner("node-race", executors);
    startRunner("node-race", executors);
    const operations = await Promise.all([1, 2, 3, 4].map(() => start("node-race")));
    for (const { id } of operations) expect((await ended(id)).state).toBe("succeeded");
    expect(runs.sort()).toEqual(operations.map((op) => op.id).sort());
  });

  it("writes progress while it runs, with a rate, and at the end", async () => {
    let finish = () => {};
    startRunner("node-progress", {
      rebuild: async (_, context) => {
        context.progress(10 * 1024 ** 2, 40 * 1024 ** 2);
        await new Promise<void>((resolve) => {
          finish = resolve;
        });
        context.progress(40 * 1024 ** 2, 40 * 1024 ** 2);
      },
    });
    const { id } = await start("node-progress");
    const running = await until(id, (op) => op.progress !== null, "progress");
    expect(running).toMatchObject({ state: "running", progress: { bytesDone: 10 * 1024 ** 2 } });
    expect(running.progress!.bytesTotal).toBe(40 * 1024 ** 2);
    expect(running.progress!.bytesPerSecond).toBeGreaterThan(0);
    finish();
    const done = await ended(id);
    expect(done).toMatchObject({ state: "succeeded", error: null, progress: { bytesDone: 40 * 1024 ** 2 } });
    expect(Date.parse(done.endedAt!)).toBeGreaterThanOrEqual(Date.parse(done.startedAt!));
  });

  it("records a failure with the executor's message", async () => {
    startRunner("node-fail", {
      rebuild: async () => {
        throw new Error("the in-sync replica on node-2 stopped answering");
      },
    });
    const { id } = await start("node-fail");
    expect(await ended(id)).toMatchObject({
      state: "failed",
      error: "the in-sync replica on node-2 stopped answering",
    });
  });

  it("fails a kind it has no executor for, saying so", async () => {
    startRunner("node-lacking", {});
    const { id } = await start("node-lacking", { kind: "repair", params: {} });
    expect(await ended(id)).toMatchObject({
      state: "failed",
      error: "the agent on node-lacking cannot run repair operations",
    });
  });

  it("cancels running work when asked, whether it reports progress or not", async () => {
    startRunner("node-cancel", {
      rebuild: async (_, { progress, signal }) => {
        progress(1, 2);
        await untilAborted(signal);
      },
      resync: (_, { signal }) => untilAborted(signal),
    });
    const reporting = await start("node-cancel");
    const silent = await start("node-cancel", { kind: "resync" });
    await until(reporting.id, (op) => op.state === "running", "the claim");
    await until(silent.id, (op) => op.state === "running", "the claim");
    await store.operations.requestCancel(reporting.id);
    await store.operations.requestCancel(silent.id);
    expect(await ended(reporting.id)).toMatchObject({ state: "cancelled", error: null });
    expect(await ended(silent.id)).toMatchObject({ state: "cancelled", error: null });
  });

  it("fails what this node had running when its agent restarted", async () => {
    const { id } = await start("node-restart");
    await store.operations.claim(id, "node-restart", "the-agent-that-died");
    const runs: string[] = [];
    startRunner("node-restart", {
      rebuild: async (operation) => {
        runs.push(operation.id);
      },
    });
    expect(await ended(id)).toMatchObject({ state: "failed", error: RESTARTED_WHILE_RUNNING });
    const next = await start("node-restart");
    expect((await ended(next.id)).state).toBe("succeeded");
    expect(runs).toEqual([next.id]);
  });

  it("stops the work it runs when the agent stops, and says so", async () => {
    const runner = startRunner("node-stop", { rebuild: (_, { signal }) => untilAborted(signal) });
    const { id } = await start("node-stop");
    await until(id, (op) => op.state === "running", "the claim");
    await runner.stop();
    expect(await store.operations.get(id)).toMatchObject({
      state: "failed",
      error: "the agent on node-stop stopped while it ran",
    });
  });

  it("stops work that was failed for it elsewhere, and writes nothing more", async () => {
    const aborted = new Set<string>();
    const noticeAbort = (operation: OperationRecord, signal: AbortSignal) =>
      untilAborted(signal).catch(() => {
        aborted.add(operation.id);
      });
    startRunner("node-lost", {
      rebuild: async (operation, { progress, signal }) => {
        progress(1, 2);
        await noticeAbort(operation, signal);
      },
      resync: (operation, { signal }) => noticeAbort(operation, signal),
    });
    for (const kind of ["rebuild", "resync"] as const) {
      const { id } = await start("node-lost", { kind });
      const running = await until(id, (op) => op.state === "running", "the claim");
      await store.operations.fail(running, "stalled: node-lost: no heartbeat for 12s");
      await until(id, () => aborted.has(id), `the abort of the ${kind}`);
      await sleep(200);
      expect(await store.operations.get(id)).toMatchObject({
        state: "failed",
        error: "stalled: node-lost: no heartbeat for 12s",
      });
    }
  });
});
