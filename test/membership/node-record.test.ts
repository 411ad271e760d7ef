import { setTimeout as sleep } from "node:timers/promises";
import { pino } from "pino";
import { afterAll, beforeAll, expect, it } from "vitest";
import { NodeMembership } from "../../agent/membership.js";
import type { PoolUsage } from "../../core/model.js";
import type { LocalDynamoDb } from "../../core/state/local-dynamodb.js";
import type { StateStore } from "../../core/state/store.js";
import { GiB } from "../core/fixtures.js";
import { freshStore, startDynamoDb } from "../core/state-harness.js";
import { eventually } from "../support/eventually.js";

let dynamoDb: LocalDynamoDb;
let store: StateStore;

beforeAll(async () => {
  dynamoDb = await startDynamoDb();
  store = await freshStore();
});

afterAll(async () => {
  store.close();
  await dynamoDb.close();
});

it("keeps the pool's provisioned bytes, file size limit and filesystem in the node's record, heartbeat after heartbeat", async () => {
  let usage: PoolUsage = {
    capacityBytes: 80 * GiB,
    usedBytes: 0,
    freeBytes: 80 * GiB,
    provisionedBytes: 0,
    fileSizeLimitBytes: 16 * 1024 * GiB,
    filesystemId: "host:2049",
    drives: [{ path: "/d0", capacityBytes: 80 * GiB, usedBytes: 0 }],
  };
  const membership = NodeMembership.start({
    tableName: store.tableName,
    node: { id: "node-1", zone: "a", addresses: { api: "http://a", replication: "a:1", nbd: "a:2" } },
    pool: async () => usage,
    log: pino({ level: "silent" }),
  });
  try {
    const pool = async () => (await store.nodes.get("node-1").catch(() => undefined))?.pool;
    await eventually(async () => (await pool()) !== undefined, "the node to register");
    // What the record keeps of the agent's usage: no per-drive detail.
    expect(await pool()).toEqual({
      capacityBytes: 80 * GiB,
      freeBytes: 80 * GiB,
      provisionedBytes: 0,
      fileSizeLimitBytes: 16 * 1024 * GiB,
      filesystemId: "host:2049",
    });

    usage = { ...usage, usedBytes: GiB, freeBytes: 79 * GiB, provisionedBytes: 15 * 1024 * GiB };
    await eventually(async () => (await pool())?.provisionedBytes === 15 * 1024 * GiB, "a heartbeat");
    expect(await pool()).toMatchObject({ freeBytes: 79 * GiB, filesystemId: "host:2049" });
  } finally {
    await membership.stop();
  }
}, 30_000);

it("has its node registered once the first registration was tried, so placement counts on an agent that says it is ready", async () => {
  const membership = NodeMembership.start({
    tableName: store.tableName,
    node: { id: "node-ready", zone: "a", addresses: { api: "http://r", replication: "r:1", nbd: "r:2" } },
    // A slow pool report: the record is written well after start() returns.
    pool: async () => {
      await sleep(300);
      return { capacityBytes: GiB, freeBytes: GiB, provisionedBytes: 0 };
    },
    log: pino({ level: "silent" }),
  });
  try {
    await membership.registrationTried();
    expect((await store.nodes.get("node-ready")).state).toBe("up");
  } finally {
    await membership.stop();
  }
});

it("registers its node up again when node-loss marked it down while the agent still serves it", async () => {
  const membership = NodeMembership.start({
    tableName: store.tableName,
    node: {
      id: "node-fenced",
      zone: "a",
      instanceId: "i-0fenced0000000000",
      addresses: { api: "http://f", replication: "f:1", nbd: "f:2" },
    },
    pool: async () => ({ capacityBytes: GiB, freeBytes: GiB, provisionedBytes: 0 }),
    log: pino({ level: "silent" }),
  });
  try {
    await eventually(
      async () => (await store.nodes.list()).some((node) => node.id === "node-fenced"),
      "the node to register",
    );
    const registered = await store.nodes.get("node-fenced");
    await store.nodes.setState("node-fenced", "down");
    await eventually(
      async () => (await store.nodes.get("node-fenced")).state === "up",
      "the node to be up again",
    );
    // The same life of the agent: one node-loss per life still names it.
    expect((await store.nodes.get("node-fenced")).registeredAt).toBe(registered.registeredAt);
  } finally {
    await membership.stop();
  }
}, 30_000);
