import { beforeEach, describe, expect, it } from "vitest";
import { HEARTBEAT_TIMEOUT_MS } from "../../core/liveness.js";
import type { StateStore } from "../../core/state/store.js";
import { markZone } from "../../functions/mark-zone/mark.js";
import { freshStorePerTest } from "../core/state-harness.js";
import { clusterOver, liveNode, NOW, registerAll, staleNode } from "./support.js";

let store: StateStore;

freshStorePerTest((fresh) => {
  store = fresh;
});

beforeEach(async () => {
  await registerAll(store, [
    staleNode("node-a1", "a"),
    liveNode("node-a2", "a"),
    staleNode("node-a3", "a", { lastHeartbeat: new Date(0).toISOString() }),
    staleNode("node-b1", "b"),
  ]);
});

describe("marking a zone", () => {
  it("marks it unavailable for placement and names its offline nodes", async () => {
    const marked = await markZone({ zone: "a", available: false, reason: "autoshift" }, clusterOver(store));

    // No report time given: nothing to wait for.
    expect(marked).toEqual({
      zone: "a",
      available: false,
      offlineNodes: ["node-a1", "node-a3"],
      settled: true,
    });
    expect(await store.zones.unavailable()).toEqual(new Set(["a"]));
    expect(await store.zones.list()).toEqual([expect.objectContaining({ zone: "a", reason: "autoshift" })]);
  });

  it("waits for the zone's nodes to go silent after AWS reports it, for three heartbeat timeouts at most", async () => {
    const justReported = { zone: "a", available: false, reason: "autoshift", detectedAt: NOW.toISOString() };
    expect((await markZone(justReported, clusterOver(store))).settled).toBe(false);
    const later = new Date(NOW.getTime() + 3 * HEARTBEAT_TIMEOUT_MS + 1);
    expect(
      (
        await markZone(
          justReported,
          clusterOver(store, () => later),
        )
      ).settled,
    ).toBe(true);
    // Zone b's only node is offline already: nothing left to wait for.
    const zoneB = { ...justReported, zone: "b" };
    expect(await markZone(zoneB, clusterOver(store))).toMatchObject({
      offlineNodes: ["node-b1"],
      settled: true,
    });
  });

  it("only looks when asked not to mark: a restore that ran meanwhile is not undone", async () => {
    await markZone({ zone: "a", available: true, reason: "autoshift completed" }, clusterOver(store));
    const looked = await markZone(
      { zone: "a", available: false, reason: "autoshift", mark: false },
      clusterOver(store),
    );
    expect(looked.offlineNodes).toEqual(["node-a1", "node-a3"]);
    expect(await store.zones.unavailable()).toEqual(new Set());
  });

  it("marks it unavailable once however often it runs, and available again when it returns", async () => {
    const cluster = clusterOver(store);
    await markZone({ zone: "a", available: false, reason: "autoshift" }, cluster);
    await markZone({ zone: "a", available: false, reason: "autoshift" }, cluster);
    expect(await store.zones.list()).toHaveLength(1);

    const restored = await markZone({ zone: "a", available: true, reason: "autoshift completed" }, cluster);

    expect(restored.available).toBe(true);
    expect(await store.zones.unavailable()).toEqual(new Set());
  });
});
