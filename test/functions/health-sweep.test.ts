import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import {
  NodeHealthDetail,
  StrataDetailType,
  type StrataEventEntry,
  ZoneHealthDetail,
} from "../../core/events.js";
import type { LocalDynamoDb } from "../../core/state/local-dynamodb.js";
import type { StateStore } from "../../core/state/store.js";
import { sweepHealth } from "../../functions/health-sweep/sweep.js";
import { freshStore, startDynamoDb } from "../core/state-harness.js";
import { CLUSTER, clusterOver, liveNode, NOW, registerAll } from "./support.js";

let dynamoDb: LocalDynamoDb;
let store: StateStore;
/** The one clock of the store (heartbeat timestamps) and of the liveness rule. */
let now: Date;
let published: StrataEventEntry[][];

beforeAll(async () => {
  dynamoDb = await startDynamoDb();
});

afterAll(async () => {
  await dynamoDb.close();
});

const REGISTERED_AT = "2029-12-31T12:00:00.000Z";

beforeEach(async () => {
  now = NOW;
  published = [];
  store = await freshStore(() => now);
  // Zone a has one node, zone b two, zone c one.
  await registerAll(store, [
    liveNode("node-a1", "a", { instanceId: "i-a1", registeredAt: REGISTERED_AT }),
    liveNode("node-b1", "b"),
    liveNode("node-b2", "b"),
    liveNode("node-c1", "c"),
  ]);
});

afterEach(() => {
  store.close();
});

const sweep = () =>
  sweepHealth(
    clusterOver(store, () => now),
    async (entries) => {
      published.push(entries);
    },
  );

/** `ms` pass; only `beating` heartbeat in them. */
async function timePasses(ms: number, ...beating: string[]) {
  now = new Date(now.getTime() + ms);
  for (const nodeId of beating) await store.nodes.heartbeat(nodeId, { freeBytes: 1 });
}

const minutePasses = (...beating: string[]) => timePasses(60_000, ...beating);

const detailOf = (entry: StrataEventEntry | undefined): unknown => JSON.parse(entry?.Detail ?? "null");

describe("the health sweep", () => {
  it("puts nothing on its first sweep over healthy nodes", async () => {
    const result = await sweep();

    expect(result).toEqual({ offlineNodes: [], offlineZones: [], events: [] });
    expect(published).toEqual([]);
    expect(await store.health.list()).toHaveLength(7);
  });

  it("puts one Node Offline for a node whose heartbeat went stale, with its instance and registration", async () => {
    await sweep();
    await minutePasses("node-b1", "node-b2", "node-c1");

    const result = await sweep();

    expect(result.offlineNodes).toEqual(["node-a1"]);
    expect(result.offlineZones).toEqual([]);
    expect(published).toHaveLength(1);
    const [event] = published[0] ?? [];
    expect(published[0]).toHaveLength(1);
    expect(event).toMatchObject({ Source: "strata", DetailType: StrataDetailType.nodeOffline });
    const detail = detailOf(event);
    expect(NodeHealthDetail.strict().parse(detail)).toEqual({
      clusterName: CLUSTER,
      nodeId: "node-a1",
      zone: "a",
      instanceId: "i-a1",
      registeredAt: REGISTERED_AT,
      stoppedCleanly: false,
      reason: "no heartbeat for 65s",
      observedAt: now.toISOString(),
    });
  });

  it("puts nothing more while the node stays offline, and Node Online once it heartbeats again", async () => {
    await sweep();
    await minutePasses("node-b1", "node-b2", "node-c1");
    await sweep();
    await minutePasses("node-b1", "node-b2", "node-c1");

    await sweep();
    expect(published).toHaveLength(1);

    await minutePasses("node-a1", "node-b1", "node-b2", "node-c1");
    const result = await sweep();

    expect(result.offlineNodes).toEqual([]);
    expect(published).toHaveLength(2);
    expect(published[1]?.map((event) => event.DetailType)).toEqual([StrataDetailType.nodeOnline]);
    expect(detailOf(published[1]?.[0])).toMatchObject({ nodeId: "node-a1", reason: "heartbeating" });
  });

  it("puts Zone Offline when both nodes of a two-node zone are offline", async () => {
    await sweep();
    await minutePasses("node-a1", "node-c1");

    const result = await sweep();

    expect(result.offlineZones).toEqual(["b"]);
    const types = published.flat().map((event) => event.DetailType);
    expect(types).toEqual([
      StrataDetailType.nodeOffline,
      StrataDetailType.nodeOffline,
      StrataDetailType.zoneOffline,
    ]);
    const zoneEvent = published.flat().find((event) => event.DetailType === StrataDetailType.zoneOffline);
    expect(ZoneHealthDetail.strict().parse(detailOf(zoneEvent))).toEqual({
      clusterName: CLUSTER,
      zone: "b",
      offlineNodes: 2,
      totalNodes: 2,
      stoppedCleanly: false,
      reason: "2 of 2 nodes offline",
      observedAt: now.toISOString(),
    });
  });

  it("never takes a zone of one node for an offline zone: that is a node loss", async () => {
    await sweep();
    await minutePasses("node-b1", "node-b2");

    const result = await sweep();

    expect(result.offlineNodes).toEqual(["node-a1", "node-c1"]);
    expect(result.offlineZones).toEqual([]);
    expect(published.flat().map((event) => event.DetailType)).toEqual([
      StrataDetailType.nodeOffline,
      StrataDetailType.nodeOffline,
    ]);
  });

  it("does not count a node lost long before in its zone's verdict: the zone's last node stopping is a node loss", async () => {
    await sweep();
    await minutePasses("node-a1", "node-b2", "node-c1");
    await sweep();
    // node-b1 was lost (and fenced) a minute ago; now the agent of node-b2 stops cleanly.
    await store.nodes.setState("node-b1", "down");
    await minutePasses("node-a1", "node-b2", "node-c1");
    await store.nodes.setState("node-b2", "down");
    published = [];

    const result = await sweep();

    expect(result.offlineNodes).toEqual(["node-b1", "node-b2"]);
    expect(result.offlineZones).toEqual([]);
    expect(published.flat().map((event) => event.DetailType)).toEqual([StrataDetailType.nodeOffline]);
    expect(detailOf(published[0]?.[0])).toMatchObject({ nodeId: "node-b2", stoppedCleanly: true });
  });

  it("says when every offline node of an offline zone stopped cleanly, and keeps the zone offline while they stay down", async () => {
    await sweep();
    await store.nodes.setState("node-b1", "down");
    await store.nodes.setState("node-b2", "down");

    await sweep();
    const zoneEvent = published.flat().find((event) => event.DetailType === StrataDetailType.zoneOffline);
    expect(detailOf(zoneEvent)).toMatchObject({ zone: "b", stoppedCleanly: true, totalNodes: 2 });

    // An hour on, the nodes the zone went down with still count: it is not reported back.
    for (let minute = 0; minute < 60; minute++) await minutePasses("node-a1", "node-c1");
    const result = await sweep();
    expect(result.offlineZones).toEqual(["b"]);
    expect(published.flat().map((event) => event.DetailType)).not.toContain(StrataDetailType.zoneOnline);
  });

  it("does not call a zone stopped cleanly when one of its nodes went silent, though it was marked down since", async () => {
    await sweep();
    await timePasses(15_000, "node-a1", "node-b2", "node-c1");
    await sweep();
    // node-loss fenced the silent node-b1 (down in its record); seconds later node-b2 stops cleanly.
    await store.nodes.setState("node-b1", "down");
    await store.nodes.setState("node-b2", "down");
    await timePasses(5_000, "node-a1", "node-c1");
    published = [];

    const result = await sweep();

    expect(result.offlineZones).toEqual(["b"]);
    const zoneEvent = published.flat().find((event) => event.DetailType === StrataDetailType.zoneOffline);
    expect(detailOf(zoneEvent)).toMatchObject({ zone: "b", stoppedCleanly: false });
  });

  it("keeps a zone offline when its verdict is recorded late: the next sweep counts the nodes the first one did", async () => {
    await sweep();
    await timePasses(15_000, "node-a1", "node-b2", "node-c1");
    await sweep();
    // node-b1 was found offline just inside the settle window (30 s) before node-b2 stops.
    await timePasses(29_500, "node-a1", "node-b2", "node-c1");
    await store.nodes.setState("node-b2", "down");
    // The bus answers slowly: the verdicts are written a second after the sweep reached them.
    const slow = await sweepHealth(
      clusterOver(store, () => now),
      async (entries) => {
        published.push(entries);
        now = new Date(now.getTime() + 1000);
      },
    );
    expect(slow.offlineZones).toEqual(["b"]);
    published = [];

    const result = await sweep();

    expect(result.offlineZones).toEqual(["b"]);
    expect(published).toEqual([]);
  });

  it("puts the events again on the next sweep when recording the verdicts was cut short", async () => {
    await sweep();
    await minutePasses("node-b1", "node-b2", "node-c1");
    const failing = sweepHealth(
      clusterOver(store, () => now),
      async () => {
        throw new Error("the bus is unreachable");
      },
    );
    await expect(failing).rejects.toThrow("the bus is unreachable");

    await sweep();

    expect(published.flat().map((event) => event.DetailType)).toEqual([StrataDetailType.nodeOffline]);
  });
});
