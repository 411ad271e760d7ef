import { afterAll, afterEach, beforeAll, expect, it } from "vitest";
import type { VolumeCoordinator } from "../../agent/replication/coordinator.js";
import { StaleEpochError } from "../../agent/replication/errors.js";
import type { StateStore } from "../../core/state/store.js";
import type { LocalDynamoDb } from "../../infra/local/dynamodb.js";
import { freshStore, startDynamoDb } from "../core/state-harness.js";
import { pattern } from "../replication/harness.js";
import { MiB } from "../store/helpers.js";
import { type ChildNode, TestVolume } from "./harness.js";
import { WriteLoad } from "./load.js";

const SIZE = 64 * MiB;
let dynamo: LocalDynamoDb;
let store: StateStore;
let volume: TestVolume | undefined;
let coordinator: VolumeCoordinator | undefined;

beforeAll(async () => {
  dynamo = await startDynamoDb();
  store = await freshStore();
});
afterEach(async () => {
  await coordinator?.close();
  await volume?.stop();
});
afterAll(async () => {
  store.close();
  await dynamo.close();
});

it("a remote replica killed under load is removed; the load goes on; acknowledged writes survive", async () => {
  volume = await TestVolume.create(store, SIZE, ["in-process", "child", "child"]);
  coordinator = await volume.attach("node-a");
  const attachedEpoch = coordinator.epoch;
  const load = new WriteLoad(coordinator, 64 * 1024, 512, 8).start();
  await load.acknowledged(200);
  const victim = volume.node("node-b") as ChildNode;
  await victim.kill();
  const after = load.count;
  await load.acknowledged(after + 300);
  await load.stop();
  expect(load.errors).toEqual([]);

  const record = await store.volumes.get(volume.volumeId);
  expect(record.replicas.map(({ node, state }) => `${node}:${state}`)).toEqual([
    "node-a:in-sync",
    "node-b:failed",
    "node-c:in-sync",
  ]);
  expect(record.epoch).toBeGreaterThan(attachedEpoch);
  expect(coordinator.epoch).toBe(record.epoch);
  expect(await volume.node("node-a").epoch()).toBe(record.epoch);
  expect(await volume.node("node-c").epoch()).toBe(record.epoch);

  const local = volume.node("node-a").replica!;
  expect(await load.missing((offset, length) => local.read(offset, length))).toEqual([]);
  const remote = await volume.node("node-c").connect();
  expect(await load.missing((offset, length) => remote.read(volume!.volumeId, offset, length))).toEqual([]);
  await remote.close();

  // The removed replica comes back with its old data: it refuses writes at the new epoch.
  await victim.restart();
  const returning = await victim.connect();
  const refused = await returning
    .write(volume.volumeId, record.epoch, 0, pattern(4096, 9), { fua: false })
    .then(
      () => undefined,
      (error: unknown) => error,
    );
  expect(refused).toBeInstanceOf(StaleEpochError);
  expect((await returning.getState(volume.volumeId)).epoch).toBeLessThan(record.epoch);
  await returning.close();
});
