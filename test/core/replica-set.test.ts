import { describe, expect, it } from "vitest";
import {
  addReplica,
  attachTo,
  dropReplica,
  failReplicas,
  fenceNode,
  landed,
  markInSync,
  resizeTo,
} from "../../core/replica-set.js";
import type { VolumeRecord } from "../../core/state/records.js";

const volume: VolumeRecord = {
  id: "vol-1",
  name: "pg-data",
  sizeBytes: 1 << 30,
  replicationFactor: 2,
  labels: {},
  nodeSelector: {},
  epoch: 7,
  replicas: [
    { replicaId: "r1", node: "node-1", state: "in-sync" },
    { replicaId: "r2", node: "node-2", state: "in-sync" },
  ],
  attachedNode: "node-1",
  createdAt: "2025-01-01T00:00:00.000Z",
  updatedAt: "2025-01-01T00:00:00.000Z",
};

describe("replica-set rules", () => {
  it("keeps a failed replica in the record, as failed, with the replication factor unchanged", () => {
    expect(failReplicas(["r2"])(volume)).toEqual({
      replicas: [
        { replicaId: "r1", node: "node-1", state: "in-sync" },
        { replicaId: "r2", node: "node-2", state: "failed" },
      ],
    });
  });

  it("adds a replica as rebuilding in place of a failed one on its node, and raises the factor", () => {
    const degraded = { ...volume, ...failReplicas(["r2"])(volume) };
    expect(addReplica({ replicaId: "r3", nodeId: "node-2" })(degraded)).toEqual({
      replicas: [
        { replicaId: "r1", node: "node-1", state: "in-sync" },
        { replicaId: "r3", node: "node-2", state: "rebuilding" },
      ],
      replicationFactor: 2,
    });
    expect(addReplica({ replicaId: "r3", nodeId: "node-3" })(volume).replicationFactor).toBe(3);
  });

  it("keeps the factor while a replica is moved: the copy joins before the old one leaves", () => {
    const rf3 = {
      ...volume,
      replicationFactor: 3,
      replicas: [...volume.replicas, { replicaId: "r3", node: "node-3", state: "in-sync" as const }],
    };
    const moving = addReplica({ replicaId: "r4", nodeId: "node-4" }, { keepFactor: true })(rf3);
    expect(moving.replicationFactor).toBe(3);
    expect(moving.replicas).toHaveLength(4);
    expect(dropReplica("r2")({ ...rf3, ...moving }).replicationFactor).toBe(3);
    // At RF2 too: a move cut short before its drop leaves the factor the operator chose.
    const rf2Moving = addReplica({ replicaId: "r3", nodeId: "node-3" }, { keepFactor: true })(volume);
    expect(rf2Moving.replicationFactor).toBe(2);
    expect(dropReplica("r2")({ ...volume, ...rf2Moving })).toMatchObject({ replicationFactor: 2 });
  });

  it("raises the factor with a plain add, past 3 too (the volume service refuses that add: it is not a move)", () => {
    const rf3 = {
      ...volume,
      replicationFactor: 3,
      replicas: [...volume.replicas, { replicaId: "r3", node: "node-3", state: "in-sync" as const }],
    };
    expect(addReplica({ replicaId: "r4", nodeId: "node-4" })(rf3).replicationFactor).toBe(4);
  });

  it("fences a lost node: its replicas failed, its attachment released; other nodes' attachments kept", () => {
    expect(fenceNode("node-1")(volume)).toEqual({
      replicas: [
        { replicaId: "r1", node: "node-1", state: "failed" },
        { replicaId: "r2", node: "node-2", state: "in-sync" },
      ],
      attachedNode: null,
      maintenance: false,
    });
    expect(fenceNode("node-2")(volume)).toEqual({
      replicas: [
        { replicaId: "r1", node: "node-1", state: "in-sync" },
        { replicaId: "r2", node: "node-2", state: "failed" },
      ],
    });
  });

  it("never fails a volume's last in-sync replica when it fences its node", () => {
    const alone = {
      ...volume,
      replicas: [
        { replicaId: "r1", node: "node-1", state: "in-sync" as const },
        { replicaId: "r2", node: "node-2", state: "rebuilding" as const },
      ],
    };
    expect(fenceNode("node-1")(alone)).toEqual({ attachedNode: null, maintenance: false });
  });

  it("brings a returning replica (same id) from failed to rebuilding", () => {
    const degraded = { ...volume, ...failReplicas(["r2"])(volume) };
    expect(addReplica({ replicaId: "r2", nodeId: "node-2" })(degraded).replicas).toContainEqual({
      replicaId: "r2",
      node: "node-2",
      state: "rebuilding",
    });
  });

  it("drops a replica for good and lowers the factor to what is left, never below 1", () => {
    expect(dropReplica("r2")(volume)).toEqual({
      replicas: [{ replicaId: "r1", node: "node-1", state: "in-sync" }],
      replicationFactor: 1,
    });
    const single = { ...volume, replicationFactor: 1, replicas: volume.replicas.slice(0, 1) };
    expect(dropReplica("r1")(single).replicationFactor).toBe(1);
  });

  it("marks a rebuilding replica in sync, records the attachment and the size", () => {
    const rebuilding = { ...volume, ...addReplica({ replicaId: "r3", nodeId: "node-3" })(volume) };
    expect(markInSync("r3")(rebuilding).replicas?.at(-1)).toEqual({
      replicaId: "r3",
      node: "node-3",
      state: "in-sync",
    });
    expect(attachTo("node-2")(volume)).toEqual({ attachedNode: "node-2", maintenance: false });
    expect(attachTo("node-2", "maintenance")(volume)).toEqual({ attachedNode: "node-2", maintenance: true });
    expect(resizeTo(2 << 30)(volume)).toEqual({ sizeBytes: 2 << 30 });
  });

  it("finds a change landed only one epoch on, with every field it set", () => {
    const change = failReplicas(["r2"])(volume);
    const written = { ...volume, ...change, epoch: 8 };
    expect(landed(written, 7, change)).toBe(true);
    expect(landed({ ...written, epoch: 9 }, 7, change)).toBe(false);
    expect(landed(written, 7, attachTo("node-3")(volume))).toBe(false);
  });
});
