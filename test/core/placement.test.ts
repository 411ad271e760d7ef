import { describe, expect, it } from "vitest";
import { StrataError } from "../../core/errors.js";
import type { Replica } from "../../core/model.js";
import {
  type ClusterView,
  countReplicas,
  DEFAULT_OVERPROVISIONING_PERCENT,
  overProvisioningPercent,
  type PlacementNode,
  placeAdditionalReplica,
  placeReplicas,
  placeVolume,
  requirePlacement,
  whyNoRoom,
} from "../../core/placement.js";
import { GiB, nodeRecord } from "./fixtures.js";

const NOW = new Date("2030-01-01T00:00:30.000Z");

function cluster(nodes: PlacementNode[], replicaCounts: Map<string, number> = new Map()): ClusterView {
  return { nodes, replicaCounts, heartbeatTimeoutMs: 45_000, now: NOW };
}

const node = (id: string, zone: string, freeGiB = 100, overrides: Partial<PlacementNode> = {}) =>
  nodeRecord(id, { zone, pool: { capacityBytes: 200 * GiB, freeBytes: freeGiB * GiB }, ...overrides });

const volume = (replicationFactor: number, sizeGiB = 10, nodeSelector = {}) => ({
  sizeBytes: sizeGiB * GiB,
  replicationFactor,
  nodeSelector,
});

const replica = (nodeId: string, state: Replica["state"] = "in-sync"): Replica => ({
  replicaId: `r-${nodeId}`,
  node: nodeId,
  state,
});

describe("placing a new volume", () => {
  it("puts each replica in its own zone, the node with most free space of each zone", () => {
    const view = cluster([
      node("a-1", "a", 50),
      node("a-2", "a", 80),
      node("b-1", "b", 90),
      node("b-2", "b", 60),
      node("c-1", "c", 40),
      node("c-2", "c", 70),
    ]);
    const placement = placeVolume(volume(3), view);
    expect(placement).toMatchObject({ ok: true, warnings: [] });
    expect(placement.ok && [...placement.nodes].sort()).toEqual(["a-2", "b-1", "c-2"]);
  });

  it("places nothing in a zone marked unavailable, and says why its nodes do not qualify", () => {
    const view = {
      ...cluster([node("a-1", "a", 100), node("b-1", "b", 50), node("c-1", "c", 50), node("c-2", "c", 90)]),
      unavailableZones: new Set(["a"]),
    };
    expect(placeVolume(volume(2), view)).toMatchObject({ ok: true, nodes: ["c-2", "b-1"] });
    const refused = placeVolume(volume(3), { ...view, unavailableZones: new Set(["a", "b"]) });
    expect(refused.ok).toBe(false);
    expect(!refused.ok && refused.message).toContain("zone a is marked unavailable");
  });

  it("spreads over zones before it prefers free space", () => {
    const view = cluster([node("a-1", "a", 100), node("a-2", "a", 90), node("b-1", "b", 20)]);
    expect(placeVolume(volume(2), view)).toMatchObject({ ok: true, nodes: ["a-1", "b-1"], warnings: [] });
  });

  it("falls back to distinct nodes in shared zones when a zone is down, and says so", () => {
    const view = cluster([
      node("node-1", "a", 100),
      node("node-2", "b", 90),
      node("node-3", "b", 80),
      node("node-4", "c", 100, { state: "down" }),
    ]);
    expect(placeVolume(volume(3), view)).toEqual({
      ok: true,
      nodes: ["node-1", "node-2", "node-3"],
      warnings: ["only 2 zones available (a, b); replicas on node-2 and node-3 share zone b"],
      verdicts: expect.any(Array),
    });
  });

  it("never puts two replicas on one node, and explains every node when it cannot place", () => {
    const view = cluster([
      node("node-1", "a"),
      node("node-2", "b"),
      node("node-3", "c", 100, { state: "down" }),
      node("node-4", "c", 2),
    ]);
    const placement = placeVolume(volume(3), view);
    expect(placement).toEqual({
      ok: false,
      message:
        "needs 3 nodes with room for 10 GiB; 2 qualify: node-1 (zone a), node-2 (zone b); node-3: down; node-4: 2 GiB free",
      verdicts: [
        { node: "node-1", zone: "a", qualifies: true, reasons: [] },
        { node: "node-2", zone: "b", qualifies: true, reasons: [] },
        { node: "node-3", zone: "c", qualifies: false, reasons: ["down"] },
        { node: "node-4", zone: "c", qualifies: false, reasons: ["2 GiB free"] },
      ],
    });
  });

  it("treats a node whose heartbeat is stale as down, whatever its recorded state", () => {
    const view = cluster([node("node-1", "a", 100, { lastHeartbeat: "2029-12-31T23:59:30.000Z" })]);
    expect(placeVolume(volume(1), view)).toMatchObject({
      ok: false,
      message: "needs 1 node with room for 10 GiB; 0 qualify; node-1: no heartbeat for 60s",
    });
  });

  it("counts a node with exactly the volume's size free as qualifying (thin volumes)", () => {
    expect(placeVolume(volume(1, 10), cluster([node("node-1", "a", 10)]))).toMatchObject({
      ok: true,
      nodes: ["node-1"],
    });
  });

  it("places only on nodes carrying every label of the node selector", () => {
    const view = cluster([
      node("node-1", "a", 100, { labels: { rack: "r1", disk: "ssd" } }),
      node("node-2", "b", 100, { labels: { rack: "r2", disk: "ssd" } }),
      node("node-3", "c", 50, { labels: { rack: "r1", disk: "ssd" } }),
      node("node-4", "c", 100, { labels: { rack: "r1" } }),
    ]);
    const pinned = volume(2, 10, { rack: "r1", disk: "ssd" });
    expect(placeVolume(pinned, view)).toMatchObject({ ok: true, nodes: ["node-1", "node-3"] });
    expect(placeVolume({ ...pinned, replicationFactor: 3 }, view)).toMatchObject({
      ok: false,
      message:
        "needs 3 nodes with room for 10 GiB and label rack=r1,disk=ssd; 2 qualify: node-1 (zone a), node-3 (zone c); " +
        "node-2: lacks label rack=r1; node-4: lacks label disk=ssd",
    });
  });

  it("lists every reason a node fails, and says when no node is registered", () => {
    const view = cluster([node("node-1", "a", 1, { state: "down", labels: {} })]);
    expect(placeVolume(volume(1, 10, { rack: "r1" }), view)).toMatchObject({
      message:
        "needs 1 node with room for 10 GiB and label rack=r1; 0 qualify; node-1: down, lacks label rack=r1, 1 GiB free",
    });
    expect(placeVolume(volume(1), cluster([]))).toMatchObject({
      message: "needs 1 node with room for 10 GiB; 0 qualify; no nodes are registered",
    });
  });

  it("prefers most free space, then fewest replicas, then the lower node id", () => {
    const sameZone = [node("node-3", "a", 50), node("node-2", "a", 50), node("node-1", "a", 40)];
    expect(placeVolume(volume(1), cluster(sameZone))).toMatchObject({ nodes: ["node-2"] });

    const loaded = countReplicas([{ replicas: [replica("node-2")] }]);
    expect(placeVolume(volume(1), cluster(sameZone, loaded))).toMatchObject({ nodes: ["node-3"] });
    expect(placeVolume(volume(2), cluster(sameZone, loaded))).toMatchObject({ nodes: ["node-3", "node-2"] });
  });
});

describe("placing one more replica", () => {
  const existing = [replica("node-1"), replica("node-2")];

  it("avoids the nodes and zones of the current replicas", () => {
    const view = cluster([
      node("node-1", "a", 200),
      node("node-2", "b", 200),
      node("node-3", "a", 150),
      node("node-4", "c", 20),
    ]);
    expect(placeAdditionalReplica({ ...volume(3), replicas: existing }, view)).toMatchObject({
      ok: true,
      nodes: ["node-4"],
      warnings: [],
    });
  });

  it("reuses the zone of a failed replica it replaces, and its node only as a last resort", () => {
    const view = cluster([
      node("node-1", "a", 200),
      node("node-2", "b"),
      node("node-3", "a", 50),
      node("node-4", "b"),
    ]);
    const degraded = { ...volume(2), replicas: [replica("node-1", "failed"), replica("node-2")] };
    expect(placeAdditionalReplica(degraded, view)).toMatchObject({
      ok: true,
      nodes: ["node-3"],
      warnings: [],
    });
    // Three nodes, one replica failed on node-3: the node that came back takes the replacement.
    const small = cluster([node("node-1", "a"), node("node-2", "b"), node("node-3", "c", 500)]);
    const lost = {
      ...volume(3),
      replicas: [replica("node-1"), replica("node-2"), replica("node-3", "failed")],
    };
    expect(placeAdditionalReplica(lost, small)).toMatchObject({ ok: true, nodes: ["node-3"], warnings: [] });
  });

  it("shares a zone only when no other zone qualifies, with a warning", () => {
    const view = cluster([
      node("node-1", "a"),
      node("node-2", "b"),
      node("node-3", "a"),
      node("node-4", "c", 1),
    ]);
    expect(placeAdditionalReplica({ ...volume(3), replicas: existing }, view)).toMatchObject({
      ok: true,
      nodes: ["node-3"],
      warnings: ["only 2 zones available (a, b); replicas on node-1 and node-3 share zone a"],
    });
  });

  it("explains why no node can take it", () => {
    const view = cluster([
      node("node-1", "a"),
      node("node-2", "b"),
      node("node-3", "c", 100, { state: "down" }),
    ]);
    const placement = placeAdditionalReplica({ ...volume(3), replicas: existing }, view);
    expect(placement).toMatchObject({
      ok: false,
      message:
        "needs 1 more node with room for 10 GiB; 0 qualify; node-1: holds a replica already; " +
        "node-2: holds a replica already; node-3: down",
    });
    expect(() => requirePlacement(placement)).toThrow(
      expect.objectContaining({
        code: "RESOURCE_EXHAUSTED",
        message: expect.stringContaining("node-3: down"),
      }),
    );
    expect(() => requirePlacement(placement)).toThrow(StrataError);
  });
});

describe("thin provisioning, one rule for every replication factor", () => {
  const TiB = 1024 * GiB;
  const pooled = (
    id: string,
    zone: string,
    provisionedGiB: number,
    extra: Partial<PlacementNode["pool"]> = {},
  ) =>
    nodeRecord(id, {
      zone,
      pool: {
        capacityBytes: 80 * GiB,
        freeBytes: 70 * GiB,
        provisionedBytes: provisionedGiB * GiB,
        ...extra,
      },
    });

  it("places volumes larger than a node's free space, up to the over-provisioning limit", () => {
    // 80 GiB at 200%: 160 GiB may be promised. 150 provisioned + 10 fits exactly, for RF1 and RF3 alike.
    const view = cluster([pooled("node-1", "a", 150), pooled("node-2", "b", 100), pooled("node-3", "c", 0)]);
    expect(placeVolume(volume(1, 100), cluster([pooled("node-1", "a", 0)]))).toMatchObject({ ok: true });
    expect(placeVolume(volume(3, 10), view)).toMatchObject({ ok: true });
    expect(placeVolume(volume(1, 10), cluster([pooled("node-1", "a", 150)]))).toMatchObject({ ok: true });
  });

  it("refuses past the limit, naming the node, its provisioned bytes and the limit", () => {
    const view = cluster([pooled("node-1", "a", 150), pooled("node-2", "b", 100), pooled("node-3", "c", 0)]);
    for (const replicationFactor of [1, 2, 3]) {
      const placement = placeVolume(volume(replicationFactor, 11), {
        ...view,
        nodes: view.nodes.slice(0, 1),
      });
      expect(placement).toMatchObject({
        ok: false,
        message: `needs ${replicationFactor} node${replicationFactor === 1 ? "" : "s"} with room for 11 GiB; 0 qualify; node-1: 150 GiB provisioned of 160 GiB allowed (200% of 80 GiB)`,
      });
    }
    expect(placeVolume(volume(3, 70), view)).toMatchObject({
      ok: false,
      message:
        "needs 3 nodes with room for 70 GiB; 1 qualify: node-3 (zone c); " +
        "node-1: 150 GiB provisioned of 160 GiB allowed (200% of 80 GiB); " +
        "node-2: 100 GiB provisioned of 160 GiB allowed (200% of 80 GiB)",
    });
  });

  it("takes the limit from the cluster view, else from $STRATA_OVERPROVISIONING_PERCENT", () => {
    const view = cluster([pooled("node-1", "a", 0)]);
    expect(placeVolume(volume(1, 100), { ...view, overProvisioningPercent: 100 })).toMatchObject({
      ok: false,
      message:
        "needs 1 node with room for 100 GiB; 0 qualify; node-1: 0 B provisioned of 80 GiB allowed (100% of 80 GiB)",
    });
    expect(overProvisioningPercent({})).toBe(DEFAULT_OVERPROVISIONING_PERCENT);
    expect(overProvisioningPercent({ STRATA_OVERPROVISIONING_PERCENT: "150" })).toBe(150);
    expect(() => overProvisioningPercent({ STRATA_OVERPROVISIONING_PERCENT: "lots" })).toThrow(
      /STRATA_OVERPROVISIONING_PERCENT must be a whole number above 0, not "lots"/,
    );
  });

  it("refuses a volume its filesystem cannot hold as one file, whatever the space", () => {
    const ext4 = (id: string, zone: string) =>
      pooled(id, zone, 0, { capacityBytes: 100 * TiB, freeBytes: 100 * TiB, fileSizeLimitBytes: 16 * TiB });
    const view = cluster([ext4("node-1", "a"), ext4("node-2", "b")]);
    expect(placeVolume({ ...volume(2), sizeBytes: 16 * TiB - 4096 }, view)).toMatchObject({ ok: true });
    expect(placeVolume({ ...volume(2), sizeBytes: 17 * TiB }, view)).toMatchObject({
      ok: false,
      message:
        "needs 2 nodes with room for 17 TiB; 0 qualify; " +
        "node-1: its filesystem holds only files smaller than 16 TiB; node-2: its filesystem holds only files smaller than 16 TiB",
    });
  });

  it("keeps new replicas off a nearly full pool", () => {
    expect(
      whyNoRoom({ capacityBytes: 100 * GiB, freeBytes: 4 * GiB, provisionedBytes: 0 }, GiB, 200),
    ).toEqual(["4 GiB free"]);
    expect(
      whyNoRoom({ capacityBytes: 100 * GiB, freeBytes: 5 * GiB, provisionedBytes: 0 }, GiB, 200),
    ).toEqual([]);
  });
});

describe("load", () => {
  it("counts replicas per node, leaving out failed ones", () => {
    const counts = countReplicas([
      { replicas: [replica("node-1"), replica("node-2", "rebuilding")] },
      { replicas: [replica("node-1"), replica("node-3", "failed")] },
    ]);
    expect(Object.fromEntries(counts)).toEqual({ "node-1": 2, "node-2": 1 });
  });

  it("chooses several replicas from a request directly", () => {
    const view = cluster([node("node-1", "a"), node("node-2", "b")]);
    expect(placeReplicas({ sizeBytes: GiB, count: 2 }, view)).toMatchObject({
      ok: true,
      nodes: ["node-1", "node-2"],
    });
  });
});
