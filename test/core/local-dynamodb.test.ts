import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { DynamoDBClient, ListTablesCommand } from "@aws-sdk/client-dynamodb";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { StateStore } from "../../core/state/store.js";
import { GiB } from "./fixtures.js";
import { startDynamoDb } from "./state-harness.js";

let dataDir: string;

beforeAll(async () => {
  dataDir = await mkdtemp(join(tmpdir(), "strata-dynamodb-"));
});

afterAll(async () => {
  await rm(dataDir, { recursive: true, force: true });
});

async function tableNames(): Promise<string[]> {
  const client = new DynamoDBClient({});
  const { TableNames } = await client.send(new ListTablesCommand({}));
  client.destroy();
  return TableNames ?? [];
}

describe("the local DynamoDB server", () => {
  it("keeps the state table across a restart on the same port when given a path", async () => {
    const path = join(dataDir, "persistent");
    const first = await startDynamoDb({ path });
    const before = new StateStore({ tableName: "strata" });
    await before.ensureTable();
    const volume = await before.volumes.create({ name: "kept", sizeBytes: GiB, replicationFactor: 1 });
    before.close();
    await first.close();

    const port = Number(new URL(first.endpoint).port);
    const second = await startDynamoDb({ path, port });
    expect(second.endpoint).toBe(first.endpoint);
    const after = new StateStore({ tableName: "strata" });
    await after.ensureTable();
    expect(await after.volumes.getByName("kept")).toEqual(volume);
    after.close();
    await second.close();
  });

  it("starts empty again without a path", async () => {
    const first = await startDynamoDb();
    const store = new StateStore({ tableName: "strata" });
    await store.ensureTable();
    expect(await tableNames()).toEqual(["strata"]);
    store.close();
    await first.close();

    const second = await startDynamoDb();
    expect(await tableNames()).toEqual([]);
    await second.close();
  });

  it("creates the table idempotently, even from concurrent callers", async () => {
    const server = await startDynamoDb();
    const store = new StateStore({ tableName: "strata" });
    await Promise.all([store.ensureTable(), store.ensureTable()]);
    await store.ensureTable();
    expect(await tableNames()).toEqual(["strata"]);
    expect(await store.nodes.list()).toEqual([]);
    store.close();
    await server.close();
  });
});
