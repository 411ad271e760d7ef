import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import type { StateStore } from "../../core/state/store.js";
import { fenceLostNode } from "../../functions/fence-node/fence.js";
import { RefusedError } from "../../functions/shared/errors.js";
import { freshStorePerTest } from "../core/state-harness.js";
import { clusterOver, liveNode, registerAll, replica, staleNode, volumeWith } from "./support.js";

let store: StateStore;

freshStorePerTest((fresh) => {
  store = fresh;
});

beforeEach(async () => {
  // node-1 is the lost one; node-2 and node-3 are alive; node-4 is down too.
  await registerAll(store, [
    staleNode("node-1", "a", { instanceId: "i-lost" }),
    liveNode("node-2", "b"),
    liveNode("node-3", "c"),
    staleNode("node-4", "c"),
  ]);
});

afterEach(() => {
  vi.restoreAllMocks();
});

const fence = () => fenceLostNode({ nodeId: "node-1", reason: "instance terminated" }, clusterOver(store));

describe("fencing a lost node", () => {
  it("fails its replicas and releases its attachment, bumping the epoch", async () => {
    const before = await volumeWith(
      store,
      "attached-there",
      [replica("node-1"), replica("node-2")],
      "node-1",
    );

    const result = await fence();

    const after = await store.volumes.get(before.id);
    expect(after.epoch).toBe(before.epoch + 1);
    expect(after.attachedNode).toBeNull();
    expect(after.replicas).toEqual([replica("node-1", "failed"), replica("node-2")]);
    expect(result).toEqual({
      nodeId: "node-1",
      zone: "a",
      instanceId: "i-lost",
      volumes: [{ volume: "attached-there", action: "fenced", attachedNode: null }],
    });
  });

  it("fails its replica of a volume attached nowhere", async () => {
    const before = await volumeWith(store, "detached", [replica("node-1"), replica("node-3")]);

    const result = await fence();

    const after = await store.volumes.get(before.id);
    expect(after.epoch).toBe(before.epoch + 1);
    expect(after.replicas).toEqual([replica("node-1", "failed"), replica("node-3")]);
    expect(result.volumes).toEqual([{ volume: "detached", action: "fenced", attachedNode: null }]);
  });

  it("leaves a volume attached to a live node to that node's coordinator", async () => {
    const before = await volumeWith(store, "coordinated", [replica("node-1"), replica("node-2")], "node-2");

    const result = await fence();

    expect(await store.volumes.get(before.id)).toEqual(before);
    expect(result.volumes).toEqual([
      { volume: "coordinated", action: "coordinated", attachedNode: "node-2" },
    ]);
  });

  it("fences a volume attached to another node that is down as well", async () => {
    const before = await volumeWith(store, "both-down", [replica("node-1"), replica("node-4")], "node-4");

    const result = await fence();

    const after = await store.volumes.get(before.id);
    expect(after.epoch).toBe(before.epoch + 1);
    expect(after.replicas).toEqual([replica("node-1", "failed"), replica("node-4")]);
    expect(after.attachedNode).toBe("node-4");
    expect(result.volumes).toEqual([{ volume: "both-down", action: "fenced", attachedNode: "node-4" }]);
  });

  it("leaves volumes without a replica on the node out of it", async () => {
    const other = await volumeWith(store, "elsewhere", [replica("node-2"), replica("node-3")]);

    const result = await fence();

    expect(result.volumes).toEqual([]);
    expect(await store.volumes.get(other.id)).toEqual(other);
  });

  it("changes nothing when run a second time", async () => {
    await volumeWith(store, "attached-there", [replica("node-1"), replica("node-2")], "node-1");
    await volumeWith(store, "detached", [replica("node-1"), replica("node-3")]);
    await volumeWith(store, "coordinated", [replica("node-1"), replica("node-2")], "node-2");
    await fence();
    const afterFirst = await store.volumes.list();

    const second = await fence();

    expect(await store.volumes.list()).toEqual(afterFirst);
    expect(second.volumes).toEqual([
      { volume: "coordinated", action: "coordinated", attachedNode: "node-2" },
    ]);
  });

  it("re-reads and fences again a volume another writer changed in between", async () => {
    const before = await volumeWith(store, "contended", [replica("node-1"), replica("node-2")]);
    const write = store.volumes.updateIfEpoch.bind(store.volumes);
    const updates = vi
      .spyOn(store.volumes, "updateIfEpoch")
      .mockImplementationOnce(async (id, epoch, change) => {
        // Another writer (an operator adding a replica) wins the epoch the fence read.
        await write(id, epoch, { replicas: [...before.replicas, replica("node-3", "rebuilding")] });
        return write(id, epoch, change);
      });

    const result = await fence();

    expect(updates).toHaveBeenCalledTimes(2);
    const after = await store.volumes.get(before.id);
    expect(after.epoch).toBe(before.epoch + 2);
    expect(after.replicas).toEqual([
      replica("node-1", "failed"),
      replica("node-2"),
      replica("node-3", "rebuilding"),
    ]);
    expect(result.volumes).toEqual([{ volume: "contended", action: "fenced", attachedNode: null }]);
  });

  it("fences nothing when it cannot tell whether the attached node is alive", async () => {
    const before = await volumeWith(store, "coordinated", [replica("node-1"), replica("node-2")], "node-2");
    const get = store.nodes.get.bind(store.nodes);
    vi.spyOn(store.nodes, "get").mockImplementation(async (nodeId) => {
      if (nodeId === "node-2")
        throw Object.assign(new Error("Rate exceeded"), { name: "ThrottlingException" });
      return get(nodeId);
    });

    await expect(fence()).rejects.toThrow("Rate exceeded");
    expect(await store.volumes.get(before.id)).toEqual(before);
  });

  it("refuses a node the cluster does not know", async () => {
    const refused = fenceLostNode({ nodeId: "node-9", reason: "lost" }, clusterOver(store));
    await expect(refused).rejects.toBeInstanceOf(RefusedError);
    await expect(refused).rejects.toMatchObject({
      name: "Strata.Refused",
      message: expect.stringContaining("node-9"),
    });
  });
});
