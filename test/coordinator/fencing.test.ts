import { afterAll, afterEach, beforeAll, expect, it } from "vitest";
import { BlockIoError } from "../../agent/block-device.js";
import type { VolumeCoordinator } from "../../agent/replication/coordinator.js";
import type { StateStore } from "../../core/state/store.js";
import type { LocalDynamoDb } from "../../infra/local/dynamodb.js";
import { freshStore, startDynamoDb } from "../core/state-harness.js";
import { pattern } from "../replication/harness.js";
import { MiB } from "../store/helpers.js";
import { TestVolume } from "./harness.js";

const SIZE = 16 * MiB;
let dynamo: LocalDynamoDb;
let store: StateStore;
let volume: TestVolume | undefined;
const coordinators: VolumeCoordinator[] = [];

beforeAll(async () => {
  dynamo = await startDynamoDb();
  store = await freshStore();
});
afterEach(async () => {
  await Promise.all(coordinators.splice(0).map((coordinator) => coordinator.close()));
  await volume?.stop();
});
afterAll(async () => {
  store.close();
  await dynamo.close();
});

it("a second coordinator takes the epoch; the first is fenced and changes nothing", async () => {
  volume = await TestVolume.create(store, SIZE, ["in-process", "in-process", "in-process"]);
  const first = await volume.attach("node-a");
  coordinators.push(first);
  await first.write(0, pattern(MiB, 1), { fua: true });
  const before = await volume.checksums();

  // The pod moved: node-b attaches. Its CAS takes the epoch and it moves every replica on.
  const second = await volume.attach("node-b");
  coordinators.push(second);
  const record = await store.volumes.get(volume.volumeId);
  expect(record.attachedNode).toBe("node-b");
  expect(second.epoch).toBe(record.epoch);
  expect(record.epoch).toBe(first.epoch + 1);

  const refused = await first.write(0, pattern(MiB, 2), { fua: true }).then(
    () => undefined,
    (error: unknown) => error,
  );
  expect(refused).toBeInstanceOf(BlockIoError);
  expect((refused as BlockIoError).errno).toBe("EPERM");
  expect(first.state).toBe("fenced");
  // Fenced for good: reads and later writes fail too, and no replica changed.
  await expect(first.read(0, 4096)).rejects.toMatchObject({ errno: "EPERM" });
  await expect(first.write(MiB, pattern(4096, 3), { fua: false })).rejects.toMatchObject({ errno: "EPERM" });
  expect(await volume.checksums()).toEqual(before);
  expect((await store.volumes.get(volume.volumeId)).replicas).toHaveLength(3);

  // The new coordinator writes normally.
  await second.write(0, pattern(MiB, 4), { fua: true });
  expect((await second.read(0, MiB)).equals(pattern(MiB, 4))).toBe(true);
});
