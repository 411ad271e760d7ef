import { beforeEach, describe, expect, it } from "vitest";
import { RequestToken } from "../../core/state/records.js";
import type { StateStore } from "../../core/state/store.js";
import { planOperations } from "../../functions/plan-operations/plan.js";
import type { OperationPlan } from "../../functions/plan-operations/planned.js";
import { GiB } from "../core/fixtures.js";
import { freshStorePerTest } from "../core/state-harness.js";
import { clusterOver, liveNode, registerAll, replica, staleNode, volumeWith } from "./support.js";

let store: StateStore;

freshStorePerTest((fresh) => {
  store = fresh;
});

const byVolume = (plan: OperationPlan) =>
  Object.fromEntries(plan.operations.map((operation) => [operation.volume, operation]));

describe("the repair plan", () => {
  beforeEach(async () => {
    // node-1 is lost; node-2 and node-3 are alive; node-4 is down.
    await registerAll(store, [
      staleNode("node-1", "a"),
      liveNode("node-2", "b"),
      liveNode("node-3", "c"),
      staleNode("node-4", "c"),
    ]);
  });

  const planRepair = (execution = "node-loss-node-1-20300101T000000000Z", lostNodes = ["node-1"]) =>
    planOperations({ purpose: "repair", execution, lostNodes }, clusterOver(store));

  it("runs a repair on the live node the volume is attached to", async () => {
    await volumeWith(store, "attached", [replica("node-1"), replica("node-2"), replica("node-3")], "node-3");

    const plan = await planRepair();

    expect(plan.how).toBe("re-replicated");
    expect(plan.unplanned).toEqual([]);
    expect(plan.operations).toEqual([
      {
        kind: "repair",
        volume: "attached",
        node: "node-3",
        requestToken: "node-loss-node-1-20300101T000000000Z:repair:attached",
        params: {},
      },
    ]);
  });

  it("runs it on a live in-sync holder, before a rebuilding one, when the volume is attached nowhere", async () => {
    await volumeWith(store, "detached", [
      replica("node-1", "failed"),
      replica("node-2", "rebuilding"),
      replica("node-3"),
    ]);

    expect(byVolume(await planRepair())["detached"]?.node).toBe("node-3");
  });

  it("does not run on a lost node that still heartbeats (a zone's nodes named lost by az-failure)", async () => {
    await volumeWith(store, "in-lost-zone", [replica("node-2"), replica("node-3")], "node-2");

    const plan = await planRepair("az-fail-b", ["node-2"]);

    expect(plan.operations.map((operation) => operation.node)).toEqual(["node-3"]);
  });

  it("leaves out volumes without a replica on a lost node", async () => {
    await volumeWith(store, "unaffected", [replica("node-2"), replica("node-3")]);

    expect(await planRepair()).toEqual({ operations: [], unplanned: [], how: "re-replicated" });
  });

  it("reports a volume whose replicas are all on lost or down nodes, naming each replica", async () => {
    await volumeWith(store, "stranded", [replica("node-1"), replica("node-4"), replica("node-gone")]);

    const plan = await planRepair();

    expect(plan.operations).toEqual([]);
    expect(plan.unplanned).toHaveLength(1);
    expect(plan.unplanned[0]?.volume).toBe("stranded");
    const reason = plan.unplanned[0]?.reason ?? "";
    expect(reason).toContain("node-1 (in-sync, lost)");
    expect(reason).toContain("node-4 (in-sync, down)");
    expect(reason).toContain("node-gone (in-sync, unknown node)");
  });

  it("derives the same request token from the same execution and volume, another from another execution", async () => {
    await volumeWith(store, "attached", [replica("node-1"), replica("node-2")], "node-2");

    const first = byVolume(await planRepair("run-1"))["attached"]?.requestToken;
    const again = byVolume(await planRepair("run-1"))["attached"]?.requestToken;
    const other = byVolume(await planRepair("run-2"))["attached"]?.requestToken;

    expect(first).toBeDefined();
    expect(again).toBe(first);
    expect(other).not.toBe(first);
    expect(RequestToken.safeParse(first).success).toBe(true);
  });

  it("keeps the tokens of long names within 128 characters, distinct per volume", async () => {
    const longVolume = (last: string) => `v${"x".repeat(61)}${last}`;
    await volumeWith(store, longVolume("1"), [replica("node-1"), replica("node-2")]);
    await volumeWith(store, longVolume("2"), [replica("node-1"), replica("node-3")]);
    const execution = `node-loss-${"n".repeat(70)}`;

    const plan = await planRepair(execution);

    const tokens = plan.operations.map((operation) => operation.requestToken);
    expect(tokens).toHaveLength(2);
    expect(new Set(tokens).size).toBe(2);
    for (const token of tokens) {
      expect(token.length).toBeLessThanOrEqual(128);
      expect(RequestToken.safeParse(token).success).toBe(true);
    }
    const replanned = (await planRepair(execution)).operations.map((operation) => operation.requestToken);
    expect(replanned).toEqual(tokens);
  });
});

describe("the resync plan", () => {
  beforeEach(async () => {
    await registerAll(store, [liveNode("node-1", "a"), liveNode("node-2", "b"), liveNode("node-3", "c")]);
  });

  it("resyncs only the returning node's failed replicas, run by the volume's runner", async () => {
    await volumeWith(store, "missed-writes", [replica("node-1", "failed"), replica("node-2")], "node-2");
    await volumeWith(store, "still-in-sync", [replica("node-1"), replica("node-3")]);
    await volumeWith(store, "other-node-failed", [replica("node-2", "failed"), replica("node-3")]);

    const plan = await planOperations(
      { purpose: "resync", execution: "node-loss-node-1", nodeId: "node-1" },
      clusterOver(store),
    );

    expect(plan).toEqual({
      how: "resynced",
      unplanned: [],
      operations: [
        {
          kind: "resync",
          volume: "missed-writes",
          node: "node-2",
          requestToken: "node-loss-node-1:resync:missed-writes",
          params: { replicaId: "r-node-1" },
        },
      ],
    });
  });
});

describe("the re-spread plan after a zone returns", () => {
  beforeEach(async () => {
    await registerAll(store, [
      liveNode("node-a1", "a"),
      staleNode("node-a2", "a", { pool: { capacityBytes: 1000 * GiB, freeBytes: 1000 * GiB } }),
      liveNode("node-b1", "b"),
      liveNode("node-b2", "b"),
      liveNode("node-c1", "c"),
    ]);
  });

  const planRespread = () =>
    planOperations({ purpose: "respread", execution: "az-restore-a", zone: "a" }, clusterOver(store));

  it("moves a replica that shares a zone into the returned zone, to a node placement chooses there", async () => {
    await volumeWith(
      store,
      "doubled",
      [replica("node-b1"), replica("node-b2"), replica("node-c1")],
      "node-b1",
    );

    const plan = await planRespread();

    expect(plan).toEqual({
      how: "re-spread",
      unplanned: [],
      operations: [
        {
          kind: "move-replica",
          volume: "doubled",
          node: "node-b1",
          requestToken: "az-restore-a:move:doubled",
          // Not the attached node's replica, and not the down node of zone a however roomy.
          params: { replicaId: "r-node-b2", targetNode: "node-a1" },
        },
      ],
    });
  });

  it("skips volumes whose replicas are on distinct zones already", async () => {
    await volumeWith(store, "has-a", [replica("node-a1"), replica("node-b1")]);
    await volumeWith(store, "distinct", [replica("node-b1"), replica("node-c1")]);
    await volumeWith(store, "failed-twin", [
      replica("node-b1"),
      replica("node-b2", "failed"),
      replica("node-c1"),
    ]);

    expect(await planRespread()).toEqual({ operations: [], unplanned: [], how: "re-spread" });
  });

  it("reports a volume the returned zone has no room for", async () => {
    await store.volumes.create({
      name: "huge",
      sizeBytes: 500 * GiB,
      replicationFactor: 2,
      replicas: [replica("node-b1"), replica("node-b2")],
    });

    const plan = await planRespread();

    expect(plan.operations).toEqual([]);
    expect(plan.unplanned).toEqual([
      { volume: "huge", reason: expect.stringContaining("no room in the returned zone") },
    ]);
    expect(plan.unplanned[0]?.reason).toContain("node-a1");
  });
});

describe("the drain plan before a scale-in", () => {
  beforeEach(async () => {
    // node-1 is being scaled in and still serves; node-2..node-4 are alive.
    await registerAll(store, [
      liveNode("node-1", "a"),
      liveNode("node-2", "b"),
      liveNode("node-3", "c"),
      liveNode("node-4", "a"),
    ]);
  });

  const planDrain = () =>
    planOperations(
      { purpose: "drain", execution: "node-loss-node-1-20300101T000000000Z", nodeId: "node-1" },
      clusterOver(store),
    );

  it("moves each live replica off the node while it serves, to a node placement chooses, run by the volume's runner", async () => {
    await volumeWith(store, "attached", [replica("node-1"), replica("node-2")], "node-1");
    await volumeWith(store, "elsewhere", [replica("node-2"), replica("node-3")]);
    await volumeWith(store, "failed-there", [replica("node-1", "failed"), replica("node-3")]);

    const plan = await planDrain();

    expect(plan.how).toBe("drained");
    expect(plan.unplanned).toEqual([]);
    expect(plan.operations).toHaveLength(1);
    const [move] = plan.operations;
    expect(move).toMatchObject({ kind: "move-replica", volume: "attached", node: "node-1" });
    expect(move?.params).toEqual({ replicaId: "r-node-1", targetNode: expect.stringMatching(/node-[34]/) });
  });

  it("reports a volume no other node has room for", async () => {
    await store.nodes.register(liveNode("node-4", "a", { pool: { capacityBytes: GiB, freeBytes: GiB } }));
    await volumeWith(store, "everywhere", [replica("node-1"), replica("node-2"), replica("node-3")]);

    const plan = await planDrain();

    expect(plan.operations).toEqual([]);
    expect(plan.unplanned).toEqual([
      { volume: "everywhere", reason: expect.stringContaining("no room for a replica off node-1") },
    ]);
  });

  it("finishes a move cut short: a volume with a replica more than its factor only drops the leaving one", async () => {
    // The copy to node-3 was in sync when the first execution failed, before the drop.
    await store.volumes.create({
      name: "half-moved",
      sizeBytes: 10 * GiB,
      replicationFactor: 2,
      replicas: [replica("node-1"), replica("node-2"), replica("node-3")],
    });

    const plan = await planDrain();

    expect(plan.operations).toHaveLength(1);
    expect(plan.operations[0]?.params).toEqual({
      replicaId: "r-node-1",
      targetNode: expect.stringMatching(/node-[23]/),
    });
  });
});
