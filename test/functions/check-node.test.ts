import { describe, expect, it } from "vitest";
import type { StateStore } from "../../core/state/store.js";
import { type CheckNodeInput, checkNode } from "../../functions/check-node/check.js";
import { freshStorePerTest } from "../core/state-harness.js";
import { clusterOver, FRESH, liveNode, NOW, STALE } from "./support.js";

let store: StateStore;
/** The store's clock: when it records the health sweep's verdicts. */
let storeNow = NOW;

freshStorePerTest(
  (fresh) => {
    store = fresh;
    storeNow = NOW;
  },
  () => storeNow,
);

/** The drives moved to i-new a minute before NOW; node-loss waits until a minute after. */
const input: CheckNodeInput = {
  purpose: "returned",
  nodeId: "node-1",
  instanceId: "i-new",
  since: "2030-01-01T00:00:00.000Z",
  deadline: "2030-01-01T00:01:00.000Z",
};
const check = (at: Date = NOW) =>
  checkNode(
    input,
    clusterOver(store, () => at),
  );

describe("checking whether a node came back on its replacement", () => {
  it("answers back once it registered from the new instance since the move, and heartbeats", async () => {
    await store.nodes.register(liveNode("node-1", "a", { instanceId: "i-new", registeredAt: FRESH }));

    expect(await check()).toEqual({ status: "back", detail: "node-1 serves from i-new" });
  });

  it("waits while the node's record is still its lost life on the old instance", async () => {
    await store.nodes.register(
      liveNode("node-1", "a", { instanceId: "i-old", registeredAt: "2029-12-31T00:00:00.000Z" }),
    );

    expect(await check()).toEqual({
      status: "waiting",
      detail: "node-1 is not serving from i-new yet (on i-old)",
    });
  });

  it("counts the new instance's registration whatever its clock says: only a registration writes the instance id", async () => {
    // The agent's clock a minute behind the workflow's: its registration still proves the return.
    await store.nodes.register(
      liveNode("node-1", "a", { instanceId: "i-new", registeredAt: "2029-12-31T23:59:00.000Z" }),
    );

    expect((await check()).status).toBe("back");
  });

  it("waits while the record still names another instance", async () => {
    await store.nodes.register(liveNode("node-1", "a", { instanceId: "i-old" }));

    expect((await check()).status).toBe("waiting");
  });

  it("gives up after the deadline, saying what it saw", async () => {
    expect(await check(new Date("2030-01-01T00:02:00.000Z"))).toEqual({
      status: "gave-up",
      detail: "node-1 is not serving from i-new yet (not registered)",
    });
  });
});

describe("a cleanly stopped node's grace", () => {
  const grace: CheckNodeInput = {
    purpose: "still-lost",
    nodeId: "node-2",
    graceUntil: "2030-01-01T00:01:00.000Z",
  };
  const look = (at: Date = NOW) =>
    checkNode(
      grace,
      clusterOver(store, () => at),
    );

  it("waits while the node is silent, and gives it up once the grace has passed", async () => {
    await store.nodes.register(liveNode("node-2", "a", { state: "down" }));
    expect((await look()).status).toBe("waiting");
    expect(await look(new Date("2030-01-01T00:01:01.000Z"))).toEqual({
      status: "gave-up",
      detail: "node-2 is still down",
    });
  });

  it("answers back once the node serves again, whichever life of its agent", async () => {
    await store.nodes.register(liveNode("node-2", "a", { registeredAt: NOW.toISOString() }));
    expect((await look()).status).toBe("back");
  });
});

describe("a zone's grace, when its offline nodes stopped cleanly", () => {
  const grace: CheckNodeInput = {
    purpose: "zone-still-lost",
    zone: "b",
    graceUntil: "2030-01-01T00:01:00.000Z",
    detectedAt: NOW.toISOString(),
  };
  const look = (at: Date = NOW) =>
    checkNode(
      grace,
      clusterOver(store, () => at),
    );

  it("waits while most of the zone is down, and gives it up once the grace has passed", async () => {
    await store.nodes.register(liveNode("node-b1", "b", { state: "down" }));
    await store.nodes.register(liveNode("node-b2", "b", { state: "down" }));
    expect(await look()).toEqual({
      status: "waiting",
      detail: "zone b is still offline: node-b1 (down), node-b2 (down)",
    });
    expect((await look(new Date("2030-01-01T00:01:01.000Z"))).status).toBe("gave-up");
  });

  it("answers back once the zone's nodes serve again, not counting one lost long before", async () => {
    await store.nodes.register(liveNode("node-b1", "b"));
    await store.nodes.register(liveNode("node-b2", "b"));
    // Found offline an hour before the zone's nodes stopped: not nodes the zone went down with.
    storeNow = new Date(STALE);
    for (const nodeId of ["node-b3", "node-b4"]) {
      await store.nodes.register(liveNode(nodeId, "b", { state: "down", lastHeartbeat: STALE }));
      await store.health.change(`NODE#${nodeId}`, true, "no heartbeat for 12s");
    }
    expect(await look()).toEqual({ status: "back", detail: "zone b serves again" });
  });
});
