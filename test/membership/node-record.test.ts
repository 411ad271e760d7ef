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
