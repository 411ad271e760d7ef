import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DriveSetHeldError, InstanceUnknownError, RecordNotFoundError } from "../../core/state/errors.js";
import type { LocalDynamoDb } from "../../core/state/local-dynamodb.js";
import type { StateStore } from "../../core/state/store.js";
import { GiB, nodeRecord } from "./fixtures.js";
import { freshStore, startDynamoDb } from "./state-harness.js";

let dynamoDb: LocalDynamoDb;
let store: StateStore;
let now = new Date("2030-01-01T00:00:00.000Z");

beforeAll(async () => {
  dynamoDb = await startDynamoDb();
  store = await freshStore(() => now);
});

afterAll(async () => {
  store.close();
  await dynamoDb.close();
});

describe("node records", () => {
  it("registers nodes and lists them", async () => {
    const first = nodeRecord("node-1", { zone: "a", instanceId: "i-0123456789abcdef0" });
    const second = nodeRecord("node-2", { zone: "b", labels: { rack: "r1" } });
    await store.nodes.register(first);
    await store.nodes.register(second);

    expect(await store.nodes.get("node-1")).toEqual(first);
    expect(await store.nodes.get("node-2")).toEqual(second);
    expect(await store.nodes.list()).toEqual([first, second]);
  });

  it("takes a heartbeat's time from the clock and its free space from the agent, nothing else", async () => {
    await store.nodes.register(nodeRecord("node-3"));
    now = new Date("2030-01-01T00:00:10.000Z");
    await store.nodes.heartbeat("node-3", { freeBytes: 42 * GiB });

    expect(await store.nodes.get("node-3")).toEqual(
      nodeRecord("node-3", {
        lastHeartbeat: "2030-01-01T00:00:10.000Z",
        pool: { capacityBytes: 100 * GiB, freeBytes: 42 * GiB },
      }),
    );
  });

  it("carries the pool's provisioned bytes, file size limit and filesystem, heartbeat after heartbeat", async () => {
    const pool = {
      capacityBytes: 80 * GiB,
      freeBytes: 70 * GiB,
      provisionedBytes: 0,
      fileSizeLimitBytes: 16 * 1024 * GiB,
      filesystemId: "2049",
    };
    await store.nodes.register(nodeRecord("node-6", { pool }));
    await store.nodes.heartbeat("node-6", { freeBytes: 69 * GiB, provisionedBytes: 15 * 1024 * GiB });
    expect((await store.nodes.get("node-6")).pool).toEqual({
      ...pool,
      freeBytes: 69 * GiB,
      provisionedBytes: 15 * 1024 * GiB,
    });
  });

  it("refuses a heartbeat from a node that never registered, without creating a record", async () => {
    await expect(store.nodes.heartbeat("ghost", { freeBytes: GiB })).rejects.toThrow(RecordNotFoundError);
    await expect(store.nodes.get("ghost")).rejects.toThrow("node ghost not found");
    expect((await store.nodes.list()).map((node) => node.id)).not.toContain("ghost");
  });

  it("marks a node down, and a heartbeat does not bring it back up", async () => {
    await store.nodes.register(nodeRecord("node-4"));
    await store.nodes.setState("node-4", "down");
    await store.nodes.heartbeat("node-4", { freeBytes: GiB });
    expect((await store.nodes.get("node-4")).state).toBe("down");

    await store.nodes.register(nodeRecord("node-4"));
    expect((await store.nodes.get("node-4")).state).toBe("up");
    await expect(store.nodes.setState("ghost", "down")).rejects.toThrow(RecordNotFoundError);
  });

  it("refuses an invalid node record", async () => {
    const broken = nodeRecord("node-5", { pool: { capacityBytes: GiB, freeBytes: -1 } });
    await expect(store.nodes.register(broken)).rejects.toMatchObject({ code: "INVALID_ARGUMENT" });
    await expect(store.nodes.get("node-5")).rejects.toThrow(RecordNotFoundError);
  });
});

describe("claiming a node's drive set", () => {
  const TIMEOUT_MS = 10_000;
  const at = (iso: string) => {
    now = new Date(iso);
    return iso;
  };

  it("refuses an agent on another instance while the holder heartbeats, then lets it claim the node", async () => {
    const held = at("2030-01-02T00:00:00.000Z");
    await store.nodes.register(nodeRecord("ds-1", { instanceId: "i-aaa", lastHeartbeat: held }), TIMEOUT_MS);
    at("2030-01-02T00:00:05.000Z");
    const replacement = nodeRecord("ds-1", {
      instanceId: "i-bbb",
      lastHeartbeat: "2030-01-02T00:00:05.000Z",
    });
    await expect(store.nodes.register(replacement, TIMEOUT_MS)).rejects.toThrow(DriveSetHeldError);
    await expect(store.nodes.register(replacement, TIMEOUT_MS)).rejects.toThrow("instance i-aaa");
    // The same instance's agent (a restart) may register again at any time.
    await store.nodes.register(nodeRecord("ds-1", { instanceId: "i-aaa", lastHeartbeat: held }), TIMEOUT_MS);

    at("2030-01-02T00:00:11.000Z");
    await store.nodes.register(replacement, TIMEOUT_MS);
    expect((await store.nodes.get("ds-1")).instanceId).toBe("i-bbb");
    // The lost instance's agent, should it still run, can no longer heartbeat for the node.
    await expect(store.nodes.heartbeat("ds-1", { freeBytes: GiB, instanceId: "i-aaa" })).rejects.toThrow(
      DriveSetHeldError,
    );
    await store.nodes.heartbeat("ds-1", { freeBytes: GiB, instanceId: "i-bbb" });
  });

  it("refuses an agent that names no instance a record that names one, naming the node and the instance", async () => {
    await store.nodes.register(nodeRecord("ds-3", { instanceId: "i-aaa" }), TIMEOUT_MS);
    const unknown = nodeRecord("ds-3");

    const refused = store.nodes.register(unknown, TIMEOUT_MS);

    await expect(refused).rejects.toThrow(InstanceUnknownError);
    await expect(store.nodes.register(unknown)).rejects.toThrow(
      "node ds-3 is registered on instance i-aaa: an agent that names no instance (STRATA_INSTANCE_ID unset) cannot register it",
    );
    expect((await store.nodes.get("ds-3")).instanceId).toBe("i-aaa");
    // A record without an instance takes such an agent's registration as before.
    await store.nodes.register({ ...unknown, id: "ds-4" });
    await store.nodes.register({ ...unknown, id: "ds-4" });
  });

  it("lets the replacement claim at once a node fenced down by node-loss", async () => {
    const held = at("2030-01-03T00:00:00.000Z");
    await store.nodes.register(nodeRecord("ds-2", { instanceId: "i-aaa", lastHeartbeat: held }), TIMEOUT_MS);
    await store.nodes.setState("ds-2", "down");
    await store.nodes.register(nodeRecord("ds-2", { instanceId: "i-ccc", lastHeartbeat: held }), TIMEOUT_MS);
    expect(await store.nodes.get("ds-2")).toMatchObject({ instanceId: "i-ccc", state: "up" });
  });
});
