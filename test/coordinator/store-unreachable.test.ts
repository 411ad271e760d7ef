import { once } from "node:events";
import { DynamoDBClient } from "@aws-sdk/client-dynamodb";
import { afterAll, afterEach, beforeAll, expect, it } from "vitest";
import type { VolumeCoordinator } from "../../agent/replication/coordinator.js";
import { StateStore } from "../../core/state/store.js";
import type { LocalDynamoDb } from "../../infra/local/dynamodb.js";
import { freshStore, startDynamoDb } from "../core/state-harness.js";
import { pattern } from "../replication/harness.js";
import { MiB } from "../store/helpers.js";
import { type ChildNode, TestVolume } from "./harness.js";
import { TcpProxy } from "./tcp-proxy.js";

const SIZE = 16 * MiB;
let dynamo: LocalDynamoDb;
let direct: StateStore;
let proxy: TcpProxy;
let proxied: StateStore;
let volume: TestVolume | undefined;
let coordinator: VolumeCoordinator | undefined;

beforeAll(async () => {
  dynamo = await startDynamoDb();
  direct = await freshStore();
  const url = new URL(dynamo.endpoint);
  proxy = new TcpProxy({ host: url.hostname, port: Number(url.port) });
  await proxy.up();
  // The coordinator reaches the store through the proxy; the test checks it directly.
  proxied = new StateStore({
    tableName: direct.tableName,
    client: new DynamoDBClient({ endpoint: `http://127.0.0.1:${proxy.port}`, maxAttempts: 1 }),
  });
});
afterEach(async () => {
  await coordinator?.close();
  await volume?.stop();
});
afterAll(async () => {
  await proxy.down();
  direct.close();
  await dynamo.close();
});

it("with the store unreachable, a write that needs a replica removed waits until the store is back", async () => {
  volume = await TestVolume.create(proxied, SIZE, ["in-process", "child", "child"]);
  coordinator = await volume.attach("node-a", { maxStoreRetryMs: 200 });
  await coordinator.write(0, pattern(MiB, 1), { fua: false });
  const epochBefore = coordinator.epoch;

  await proxy.down();
  await (volume.node("node-b") as ChildNode).kill();
  const unreachable = once(coordinator, "store-unreachable");
  let settled = false;
  const write = coordinator.write(MiB, pattern(MiB, 2), { fua: false }).finally(() => {
    settled = true;
  });
  // The write reached node-a and node-c but not node-b; the removal cannot be recorded.
  await unreachable;
  await once(coordinator, "store-unreachable");
  expect(settled).toBe(false);
  expect(coordinator.state).toBe("changing-membership");
  const stillListed = await direct.volumes.get(volume.volumeId);
  expect(stillListed.replicas).toHaveLength(3);
  expect(stillListed.epoch).toBe(epochBefore);

  await proxy.up();
  await write;
  const record = await direct.volumes.get(volume.volumeId);
  expect(record.replicas.map(({ node, state }) => `${node}:${state}`)).toEqual([
    "node-a:in-sync",
    "node-b:failed",
    "node-c:in-sync",
  ]);
  expect(record.epoch).toBe(epochBefore + 1);
  expect(coordinator.epoch).toBe(record.epoch);
  expect(coordinator.state).toBe("serving");
  const local = volume.node("node-a").replica!;
  expect((await local.read(MiB, MiB)).equals(pattern(MiB, 2))).toBe(true);
});
