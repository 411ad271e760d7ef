import { once } from "node:events";
import { DynamoDBClient } from "@aws-sdk/client-dynamodb";
import { afterAll, beforeAll, expect, it } from "vitest";
import { StateStore } from "../../core/state/store.js";
import { pattern } from "../replication/harness.js";
import { MiB } from "../store/helpers.js";
import { type ChildNode, useCoordinatorSuite } from "./harness.js";
import { TcpProxy } from "./tcp-proxy.js";

const SIZE = 16 * MiB;
// The coordinator reaches the suite's store through a proxy; the test checks it directly.
const suite = useCoordinatorSuite();
let proxy: TcpProxy;
let proxied: StateStore;

// Registered after the suite's hooks: runs after its beforeAll, and before its afterAll (stack order).
beforeAll(async () => {
  const url = new URL(suite.dynamo.endpoint);
  proxy = new TcpProxy({ host: url.hostname, port: Number(url.port) });
  await proxy.up();
  proxied = new StateStore({
    tableName: suite.store.tableName,
    client: new DynamoDBClient({ endpoint: `http://127.0.0.1:${proxy.port}`, maxAttempts: 1 }),
  });
});
afterAll(async () => {
  await proxy.down();
});

it("with the store unreachable, a write that needs a replica removed waits until the store is back", async () => {
  const direct = suite.store;
  const volume = await suite.createVolume(SIZE, ["in-process", "child", "child"], proxied);
  const coordinator = await suite.attach(volume, "node-a", { maxStoreRetryMs: 200 });
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
