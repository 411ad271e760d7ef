import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { VolumeCoordinator } from "../../agent/replication/coordinator/coordinator.js";
import type { OperationKind, OperationRecord, VolumeRecord } from "../../core/state/records.js";
import type { StateStore } from "../../core/state/store.js";
import { capturingLogger } from "../api/harness.js";
import { storePerSuite } from "../core/state-harness.js";
import { eventually } from "../support/eventually.js";
import { type InProcessAgent, startInProcessAgent } from "../support/in-process-agent.js";

/**
 * move-replica as a workflow runs it (an operation record the named node picks up), on four agents
 * in this process that serve their replicas to each other: the factor stays through the move, and
 * a move cut short between its copy and its drop is finished by running it again.
 */

const MiB = 1024 * 1024;
const suite = storePerSuite();
let store: StateStore;
let agents: InProcessAgent[] = [];
let tokens = 0;

beforeAll(async () => {
  store = suite.store;
  const zones = ["local-a", "local-b", "local-c", "local-a"];
  agents = await Promise.all(
    zones.map((zone, index) =>
      startInProcessAgent({
        store,
        nodeId: `node-${index + 1}`,
        zone,
        log: capturingLogger().log,
        secret: "cluster-secret-for-move-tests",
      }),
    ),
  );
}, 60_000);

afterAll(async () => {
  await Promise.all(agents.map((agent) => agent.close()));
});

const created = async (name: string, replicationFactor: number): Promise<VolumeRecord> => {
  await agents[0]!.volumes.createVolume({
    name,
    sizeBytes: 16 * MiB,
    labels: {},
    nodeSelector: {},
    replicationFactor,
  });
  return store.volumes.getByName(name);
};

/** Starts an operation on node-1 as a workflow does, and waits for it to end. */
async function run(
  volume: VolumeRecord,
  kind: OperationKind,
  params: Record<string, string>,
): Promise<OperationRecord> {
  const started = await store.operations.start({
    requestToken: `move-test-${++tokens}`,
    kind,
    volumeId: volume.id,
    volumeName: volume.name,
    node: "node-1",
    params,
  });
  let ended: OperationRecord | undefined;
  await eventually(async () => {
    ended = await store.operations.get(started.id);
    return ended.endedAt !== null;
  }, `${kind} to end`);
  return ended!;
}

const replicaOn = (volume: VolumeRecord, node: string) =>
  volume.replicas.find((replica) => replica.node === node)!;
const placement = (volume: VolumeRecord) =>
  volume.replicas.map((replica) => `${replica.node}:${replica.state}`).sort();

describe("move-replica", () => {
  it("moves a replica of an RF3 volume with the factor at 3 throughout, and refuses a plain fourth replica", async () => {
    const volume = await created("rf3", 3);
    expect(placement(volume)).toEqual(["node-1:in-sync", "node-2:in-sync", "node-3:in-sync"]);
    const written = vi.spyOn(store.volumes, "updateIfEpoch");
    try {
      const move = await run(volume, "move-replica", {
        replicaId: replicaOn(volume, "node-2").replicaId,
        targetNode: "node-4",
      });
      expect(move.state).toBe("succeeded");
      const factors = written.mock.calls.map(([, , change]) => change.replicationFactor ?? 3);
      expect(new Set(factors)).toEqual(new Set([3]));
    } finally {
      written.mockRestore();
    }
    const moved = await store.volumes.get(volume.id);
    expect(moved.replicationFactor).toBe(3);
    expect(placement(moved)).toEqual(["node-1:in-sync", "node-3:in-sync", "node-4:in-sync"]);

    const add = await run(moved, "add-replica", { targetNode: "node-2" });
    expect(add.state).toBe("failed");
    expect(add.error).toMatch(/has 3 live replicas, the most a volume may have; move one instead/);
    expect(placement(await store.volumes.get(volume.id))).toEqual(placement(moved));
  });

  it("leaves the volume at its factor when the drop fails after the copy, and finishes the move when run again", async () => {
    const volume = await created("rf2", 2);
    expect(placement(volume)).toEqual(["node-1:in-sync", "node-2:in-sync"]);
    const params = { replicaId: replicaOn(volume, "node-2").replicaId, targetNode: "node-3" };
    const drop = vi
      .spyOn(VolumeCoordinator.prototype, "dropReplica")
      .mockRejectedValueOnce(new Error("the state store went away"));
    try {
      const cut = await run(volume, "move-replica", params);
      expect(cut.state).toBe("failed");
      expect(cut.error).toMatch(/the state store went away/);
    } finally {
      drop.mockRestore();
    }
    // Consistent: the new replica is in sync, the old one still is, and the factor is the operator's.
    const between = await store.volumes.get(volume.id);
    expect(between.replicationFactor).toBe(2);
    expect(placement(between)).toEqual(["node-1:in-sync", "node-2:in-sync", "node-3:in-sync"]);

    const again = await run(between, "move-replica", params);
    expect(again.state).toBe("succeeded");
    // Nothing copied again: the copy was done, only the drop was left.
    expect(again.progress).toBeNull();
    const moved = await store.volumes.get(volume.id);
    expect(moved.replicationFactor).toBe(2);
    expect(placement(moved)).toEqual(["node-1:in-sync", "node-3:in-sync"]);
    await eventually(
      async () => agents[1]!.replicas.listReplicas(volume.id).length === 0,
      "the old replica's data to be deleted",
    );

    // Once finished, the same move again changes no replica (its maintenance attachment aside).
    expect((await run(moved, "move-replica", params)).state).toBe("succeeded");
    const after = await store.volumes.get(volume.id);
    expect({ replicas: after.replicas, factor: after.replicationFactor }).toEqual({
      replicas: moved.replicas,
      factor: 2,
    });
  });
});
