import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import type { StateStore } from "../../core/state/store.js";
import { pollOperation } from "../../functions/poll-operation/poll.js";
import { RefusedError } from "../../functions/shared/errors.js";
import { StartOperationInput, startOperation } from "../../functions/start-operation/start.js";
import { freshStorePerTest } from "../core/state-harness.js";
import { clusterOver, liveNode, NOW, registerAll, replica, staleNode, volumeWith } from "./support.js";

let store: StateStore;

freshStorePerTest(
  (fresh) => {
    store = fresh;
  },
  () => NOW,
);

beforeEach(async () => {
  await registerAll(store, [liveNode("node-1", "a"), liveNode("node-2", "b"), staleNode("node-3", "c")]);
  await volumeWith(store, "vol-a", [replica("node-1"), replica("node-2", "failed")], "node-1");
});

afterEach(() => {
  vi.restoreAllMocks();
});

/** What a plan hands start-operation, parsed as its handler parses it. */
const repairOn = (node: string, requestToken = "node-loss-x:repair:vol-a") =>
  StartOperationInput.parse({ kind: "repair", volume: "vol-a", node, requestToken, params: {} });

describe("starting an operation", () => {
  it("starts one operation for one request token, however often the task runs", async () => {
    const first = await startOperation(repairOn("node-1"), clusterOver(store));
    const second = await startOperation(repairOn("node-1"), clusterOver(store));

    expect(first).toEqual({ operationId: expect.any(String), state: "pending" });
    expect(second).toEqual(first);
    expect(await store.operations.list()).toHaveLength(1);
  });

  it("starts one restore for one request token, also when the retry finds the volume that restore made", async () => {
    const restoreInto = (volume: string) =>
      StartOperationInput.parse({
        kind: "restore",
        volume,
        node: "node-1",
        requestToken: "restore:restore-copy",
        params: { cloudsnap: "0b8e7c39-4a3a-4bd4-9a62-3f8c9a3c2b10-20300101T000000000Z" },
      });
    const first = await startOperation(restoreInto("copy"), clusterOver(store));
    const again = await startOperation(restoreInto("copy"), clusterOver(store));
    expect(again).toEqual(first);

    // The agent made the volume under the id the start chose; the reply of a third start was lost.
    const { volumeId } = await store.operations.get(first.operationId);
    await store.volumes.create({ id: volumeId, name: "copy", sizeBytes: 4096, replicationFactor: 1 });
    expect(await startOperation(restoreInto("copy"), clusterOver(store))).toEqual(first);
    expect(await store.operations.list()).toHaveLength(1);

    // Another restore into that name is refused, however its token reads.
    await volumeWith(store, "taken", [replica("node-1")]);
    await expect(startOperation(restoreInto("taken"), clusterOver(store))).rejects.toThrow(
      'volume "taken" already exists: restore into a new name',
    );
  });

  it("refuses a node the cluster does not know", async () => {
    const refused = startOperation(repairOn("node-9"), clusterOver(store));
    await expect(refused).rejects.toBeInstanceOf(RefusedError);
    await expect(refused).rejects.toThrow(/node-9/);
  });

  it("refuses a volume the cluster does not know", async () => {
    const request = StartOperationInput.parse({
      kind: "repair",
      volume: "no-such-volume",
      node: "node-1",
      requestToken: "t-1",
    });
    await expect(startOperation(request, clusterOver(store))).rejects.toMatchObject({
      name: "Strata.Refused",
    });
  });
});

describe("polling an operation", () => {
  it("answers pending for an operation its live node has not picked up yet", async () => {
    const { operationId } = await startOperation(repairOn("node-1"), clusterOver(store));

    expect(await pollOperation({ operationId }, clusterOver(store))).toEqual({
      operationId,
      volume: "vol-a",
      state: "pending",
      error: null,
      bytesDone: 0,
      bytesTotal: 0,
      result: {},
    });
  });

  it("fails an operation whose node stopped heartbeating, and answers failed with why", async () => {
    const { operationId } = await startOperation(repairOn("node-3", "t-stalled"), clusterOver(store));

    const status = await pollOperation({ operationId }, clusterOver(store));

    expect(status.state).toBe("failed");
    expect(status.error).toMatch(/^stalled: node-3/);
    expect(await store.operations.get(operationId)).toMatchObject({ state: "failed", error: status.error });
    // The next poll finds it failed and leaves it so.
    expect(await pollOperation({ operationId }, clusterOver(store))).toEqual(status);
  });

  it("answers the operation as it is when its node came back between the poll's look and the fail", async () => {
    await store.nodes.register(staleNode("node-2", "b"));
    const { operationId } = await startOperation(repairOn("node-2", "t-back"), clusterOver(store));
    const list = store.nodes.list.bind(store.nodes);
    let lists = 0;
    vi.spyOn(store.nodes, "list").mockImplementation(async () => {
      // The poll's first look sees node-2 silent; its agent heartbeats right after.
      if (++lists === 2) await store.nodes.heartbeat("node-2", { freeBytes: 1 });
      return list();
    });

    const status = await pollOperation({ operationId }, clusterOver(store));

    expect(status).toMatchObject({ operationId, state: "pending", error: null });
    expect((await store.operations.get(operationId)).state).toBe("pending");
  });

  it("reports the progress its node wrote", async () => {
    const { operationId } = await startOperation(repairOn("node-1"), clusterOver(store));
    await store.operations.claim(operationId, "node-1", "runner-1");
    await store.operations.reportProgress(operationId, "runner-1", {
      bytesDone: 4096,
      bytesTotal: 8192,
      bytesPerSecond: 1024,
      updatedAt: NOW.toISOString(),
    });

    expect(await pollOperation({ operationId }, clusterOver(store))).toMatchObject({
      state: "running",
      bytesDone: 4096,
      bytesTotal: 8192,
    });
  });
});
