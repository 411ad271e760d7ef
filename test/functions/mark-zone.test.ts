import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import type { LocalDynamoDb } from "../../core/state/local-dynamodb.js";
import type { StateStore } from "../../core/state/store.js";
import { markZone } from "../../functions/mark-zone/mark.js";
import { freshStore, startDynamoDb } from "../core/state-harness.js";
import { clusterOver, liveNode, registerAll, staleNode } from "./support.js";

let dynamoDb: LocalDynamoDb;
let store: StateStore;

beforeAll(async () => {
  dynamoDb = await startDynamoDb();
});

afterAll(async () => {
  await dynamoDb.close();
});

beforeEach(async () => {
  store = await freshStore();
  await registerAll(store, [
    staleNode("node-a1", "a"),
    liveNode("node-a2", "a"),
    staleNode("node-a3", "a", { lastHeartbeat: new Date(0).toISOString() }),
    staleNode("node-b1", "b"),
  ]);
});

afterEach(() => {
  store.close();
});

describe("marking a zone", () => {
  it("marks it unavailable for placement and names its offline nodes", async () => {
    const marked = await markZone({ zone: "a", available: false, reason: "autoshift" }, clusterOver(store));

    expect(marked).toEqual({ zone: "a", available: false, offlineNodes: ["node-a1", "node-a3"] });
    expect(await store.zones.unavailable()).toEqual(new Set(["a"]));
    expect(await store.zones.list()).toEqual([expect.objectContaining({ zone: "a", reason: "autoshift" })]);
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
