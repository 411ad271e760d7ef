import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { useLocalAws } from "../../core/local-aws-environment.js";
import { failIfStalled, Operation } from "../../core/operations.js";
import { StateStore } from "../../core/state/store.js";
import { eventually } from "../support/eventually.js";
import {
  clusterUp,
  oneSentence,
  prepareClusterDir,
  type RunningCluster,
  strata,
  tearDownCluster,
} from "./strata-process.js";

/**
 * Operations in a local cluster, on both paths: started through an agent's API (the CLI's) and by
 * a record written to the state table (a workflow's), picked up by the named node, and read back
 * with `strata operation`, succeeding or failing with the reason the volume service gives.
 */

let dir: string;
let cluster: RunningCluster | undefined;
let store: StateStore;
/** Short, so a killed node's operations show stalled quickly; still several heartbeats (2 s) long. */
const HEARTBEAT_TIMEOUT_MS = 6_000;
const run = (...args: string[]) => strata(["--dir", dir, ...args]);

beforeAll(async () => {
  dir = await prepareClusterDir("strata-operations-");
  // The agents inherit it: their API judges stalled operations, as the CLI's status judges nodes.
  process.env["STRATA_HEARTBEAT_TIMEOUT_MS"] = String(HEARTBEAT_TIMEOUT_MS);
  cluster = await clusterUp(dir, ["--nodes", "2", "--zones", "2"]);
  useLocalAws(cluster.file.dynamodb.endpoint);
  store = new StateStore({ tableName: cluster.file.dynamodb.table });
  expect((await run("volume", "create", "pg", "--size", "64MiB", "--repl", "2")).code).toBe(0);
});

afterAll(async () => {
  store?.close();
  await tearDownCluster(dir, cluster);
});

const show = async (id: string) => {
  const outcome = await run("--json", "operation", "show", id);
  expect(outcome.code).toBe(0);
  return Operation.parse(JSON.parse(outcome.stdout));
};
/** What a workflow's Lambda does: write the record, for node-2 to pick up. */
const workflowRepair = async (requestToken: string) => {
  const volume = await store.volumes.getByName("pg");
  return store.operations.start({
    requestToken,
    kind: "repair",
    volumeId: volume.id,
    volumeName: volume.name,
    node: "node-2",
  });
};
const failed = (id: string) => eventually(async () => (await show(id)).state === "failed", `${id} to fail`);

describe("operations in a local cluster", () => {
  it("runs an operation started through the API on the agent asked, and shows it", async () => {
    const volume = await store.volumes.getByName("pg");
    const response = await fetch(`${cluster!.file.nodes[0]!.apiUrl}/v1/operations`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({
        kind: "rebuild",
        volume: "pg",
        requestToken: "cli-test-1",
        params: { replicaId: volume.replicas[1]!.replicaId },
      }),
    });
    expect(response.status).toBe(201);
    const { id } = Operation.parse(await response.json());
    await failed(id);

    const list = await run("operation", "list");
    expect(list.code).toBe(0);
    // Rebuilding copies a failed replica again; this one is in sync, and the error says so.
    const why = `cannot rebuild replica ${volume.replicas[1]!.replicaId} of volume "pg": it is in-sync, not failed`;
    expect(list.stdout).toMatch(
      new RegExp(`^${id}\\s+rebuild\\s+pg\\s+node-1\\s+failed\\s+-\\s+\\S+\\s+\\S+\\s+`, "m"),
    );
    expect(list.stdout).toContain(why);
    const shown = await run("operation", "show", id);
    expect(shown.stdout).toMatch(/^State:\s+failed$/m);
    expect(shown.stdout).toMatch(/^Error:\s+cannot rebuild replica /m);
    expect(shown.stdout).toContain(why);

    const waited = await run("operation", "wait", id);
    expect(waited.code).toBe(1);
    expect(oneSentence(waited)).toBe(`rebuild of pg on node-1 failed: ${why}`);

    // ha-update is an operation: --no-wait prints its id, and `operation wait` follows it to the end.
    const started = await run("volume", "ha-update", "pg", "--repl", "1", "--no-wait");
    expect(started.code).toBe(0);
    const haUpdate = started.stdout.trim();
    const ended = await run("operation", "wait", haUpdate);
    expect(ended.code).toBe(0);
    expect(ended.stdout).toMatch(new RegExp(`operation ${haUpdate} \\(replication of pg\\) succeeded`));
    expect((await show(haUpdate)).state).toBe("succeeded");
    expect((await store.volumes.getByName("pg")).replicas).toHaveLength(1);
  });

  it("runs an operation a workflow wrote to the state table on the node it names", async () => {
    // pg has one replica left, and its factor says 1: the repair finds nothing to do, on node-2,
    // through a maintenance attachment (pg is attached nowhere).
    const written = await workflowRepair("workflow-execution-1");
    await eventually(async () => (await show(written.id)).state === "succeeded", `${written.id} to succeed`);
    expect((await store.volumes.getByName("pg")).attachedNode).toBeNull();

    const ofVolume = await run("--json", "operation", "list", "--volume", "pg");
    const { operations } = JSON.parse(ofVolume.stdout) as { operations: Operation[] };
    expect(operations.map((op) => [op.requestToken.replace(/^(ha-update-pg)-.*$/, "$1"), op.node])).toEqual([
      ["cli-test-1", "node-1"],
      ["ha-update-pg", "node-1"],
      ["workflow-execution-1", "node-2"],
    ]);
    expect(oneSentence(await run("operation", "show", "no-such-op"))).toBe("operation no-such-op not found");
  });

  it("shows an operation whose node was killed as stalled, and lets its caller fail it", async () => {
    expect((await run("node", "stop", "node-2", "--kill")).code).toBe(0);
    const stuck = await workflowRepair("workflow-execution-2");
    await eventually(async () => (await show(stuck.id)).stalled !== null, "the operation to stall", 30_000);
    // Down by its heartbeat, or marked down by the node-loss workflow the health sweep started.
    expect((await run("operation", "show", stuck.id)).stdout).toMatch(
      /^Stalled:\s+node-2: (no heartbeat for \d+s|down)$/m,
    );
    expect((await run("operation", "list")).stdout).toMatch(
      /^\S+\s+repair\s+pg\s+node-2\s+pending \(stalled\)/m,
    );

    const liveness = { heartbeatTimeoutMs: HEARTBEAT_TIMEOUT_MS, now: new Date() };
    const ended = await failIfStalled(store, stuck.id, liveness);
    expect(ended.error).toMatch(/^stalled: node-2: (no heartbeat for \d+s|down)$/);
    expect((await show(stuck.id)).state).toBe("failed");
  });
});
