/**
 * Resync of a returning replica (dirty-region tracking): a replica whose node dies under load and
 * comes back with its old data refuses I/O at the new epoch, then is made identical by copying
 * only the regions changed since it left, while writes go on.
 */
import { expect, it } from "vitest";
import { StaleEpochError } from "../../agent/replication/errors.js";
import { pattern } from "../replication/harness.js";
import { MiB } from "../store/helpers.js";
import { type ChildNode, useCoordinatorSuite } from "./harness.js";
import { WriteLoad } from "./load.js";

const SIZE = 256 * MiB;
/** Written before the replica leaves: 1 MiB every 4 MiB, a quarter of the volume. */
const WRITTEN = 64 * MiB;
/** The load during the absence and the resync stays in the first 4 MiB. */
const LOAD_SLOT = 64 * 1024;
const LOAD_SLOTS = 64;
const suite = useCoordinatorSuite();

async function refusal(work: Promise<unknown>): Promise<unknown> {
  return work.then(
    () => undefined,
    (error: unknown) => error,
  );
}

it("a replica back after kill -9 refuses I/O at the new epoch, then resyncs only what changed and is identical", async () => {
  const volume = await suite.createVolume(SIZE, ["in-process", "child", "child"]);
  const coordinator = await suite.attach(volume, "node-a");
  for (let i = 0; i < WRITTEN / MiB; i++) {
    await coordinator.write(i * 4 * MiB, pattern(MiB, i + 1), { fua: false });
  }
  await coordinator.flush();
  // Epochs bound what a returning replica copies: the data above predates the one it leaves at.
  await coordinator.checkpoint();

  const load = new WriteLoad(coordinator, LOAD_SLOT, LOAD_SLOTS, 4).start();
  await load.acknowledged(50);
  const victim = volume.node("node-c") as ChildNode;
  await victim.kill();
  await load.acknowledged(load.count + 100);
  // Changes while it is away, outside the load's area: new data, and a trim of data it holds.
  await coordinator.write(100 * MiB, pattern(2 * MiB, 77), { fua: false });
  await coordinator.trim(200 * MiB, MiB, { fua: false });
  await coordinator.write(122 * MiB, pattern(4096, 78), { fua: false });
  await coordinator.flush();

  const record = await suite.store.volumes.get(volume.volumeId);
  expect(record.replicas.find((replica) => replica.node === "node-c")?.state).toBe("failed");

  // Back with its old data: behind the volume's epoch, so it can neither be written nor read at it.
  await victim.restart();
  const returning = await victim.connect();
  expect(
    await refusal(returning.write(volume.volumeId, record.epoch, 0, pattern(4096, 9), { fua: false })),
  ).toBeInstanceOf(StaleEpochError);
  expect(await refusal(returning.read(volume.volumeId, 0, 4096, { epoch: record.epoch }))).toBeInstanceOf(
    StaleEpochError,
  );
  await returning.close();
  const stale = await volume.checksums();
  expect(stale.get("node-c")).not.toBe(stale.get("node-a"));

  const { state: _, ...target } = await volume.target("node-c", "node-a");
  const resync = coordinator.resyncReplica(target);
  await resync.done;
  await load.acknowledged(load.count + 50);
  await load.stop();
  expect(load.errors).toEqual([]);

  const { kind, phase, totalBytes, copiedBytes } = resync.progress;
  expect({ kind, phase }).toEqual({ kind: "resync", phase: "in-sync" });
  expect(copiedBytes).toBe(totalBytes);
  // The progress counts the data that moves: what the source holds in the regions changed since
  // the replica left. The load's 4 MiB area (its first 1 MiB written in full before), the 2 MiB
  // written and the 4 KiB one (in a region otherwise empty); the 1 MiB trimmed is cleared on the
  // target but moves no data.
  // Not the 8 changed 1 MiB regions, nor the 64 MiB the replica holds.
  expect(totalBytes).toBeGreaterThan(3 * MiB + 4096);
  expect(totalBytes).toBeLessThanOrEqual(6 * MiB + 4096);
  expect(totalBytes % 4096).toBe(0);

  const after = await suite.store.volumes.get(volume.volumeId);
  expect(after.replicas.map(({ node, state }) => `${node}:${state}`)).toEqual([
    "node-a:in-sync",
    "node-b:in-sync",
    "node-c:in-sync",
  ]);
  expect(await victim.epoch()).toBe(after.epoch);
  const sums = await volume.checksums();
  expect(sums.get("node-c")).toBe(sums.get("node-a"));
  expect(sums.get("node-b")).toBe(sums.get("node-a"));
  const rejoined = await victim.connect();
  expect(await load.missing((offset, length) => rejoined.read(volume.volumeId, offset, length))).toEqual([]);
  expect((await rejoined.getState(volume.volumeId)).rebuilding).toBe(false);
  await rejoined.close();
});

it("a replica whose resync was cut short (still marked rebuilding) is resynced over everything either side changed", async () => {
  const volume = await suite.createVolume(64 * MiB, ["in-process", "child"]);
  const coordinator = await suite.attach(volume, "node-a");
  await coordinator.write(8 * MiB, pattern(MiB, 1), { fua: true });
  const victim = volume.node("node-b") as ChildNode;
  await victim.kill();
  await coordinator.write(40 * MiB, pattern(MiB, 2), { fua: true });
  await victim.restart();
  // As if an earlier resync had marked it and then died mid-copy.
  const client = await victim.connect();
  await client.setRebuilding(volume.volumeId, (await client.getState(volume.volumeId)).epoch, true);
  await client.close();

  const { state: _, ...target } = await volume.target("node-b", "node-a");
  const resync = coordinator.resyncReplica(target);
  await resync.done;
  // Both 1 MiB regions: the one written before it left counts too, since the copy may have missed it.
  expect(resync.progress.totalBytes).toBe(2 * MiB);
  const sums = await volume.checksums();
  expect(sums.get("node-b")).toBe(sums.get("node-a"));
});

it("a coordinator taking over after a crash reconciles the last writes that reached only some replicas", async () => {
  const volume = await suite.createVolume(64 * MiB, ["in-process", "child", "child"]);
  const first = await suite.attach(volume, "node-a");
  await first.write(0, pattern(MiB, 1), { fua: true });
  await first.checkpoint();
  // The coordinator dies while its last write is in flight: node-b got it, node-a and node-c not.
  const partial = await volume.node("node-b").connect();
  await partial.write(volume.volumeId, first.epoch, 20 * MiB, pattern(MiB, 2), { fua: true });
  await partial.close();
  const diverged = await volume.checksums();
  expect(diverged.get("node-b")).not.toBe(diverged.get("node-c"));

  const second = await suite.attach(volume, "node-c", { reconcile: true });
  // Only the region written since the last checkpoint is copied, from node-c's replica to the others.
  expect(await second.reconciled).toBe(MiB);
  const sums = await volume.checksums();
  expect(new Set(sums.values()).size).toBe(1);
  expect(await second.read(0, MiB)).toEqual(pattern(MiB, 1));
});

it("a failed replica replaced elsewhere is dropped from the record, and the replication factor stays", async () => {
  const volume = await suite.createVolume(16 * MiB, ["in-process", "child"]);
  const coordinator = await suite.attach(volume, "node-a");
  await (volume.node("node-b") as ChildNode).kill();
  await coordinator.write(0, pattern(MiB, 3), { fua: true });
  await volume.addNode("node-c", "child");
  const { state: _, ...target } = await volume.target("node-c", "node-a");
  await coordinator.addReplica(target).done;
  const replaced = await suite.store.volumes.get(volume.volumeId);
  expect(replaced.replicas.map(({ node, state }) => `${node}:${state}`)).toEqual([
    "node-a:in-sync",
    "node-b:failed",
    "node-c:in-sync",
  ]);

  await coordinator.dropReplica("replica-node-b");
  const tidied = await suite.store.volumes.get(volume.volumeId);
  expect(tidied.replicas.map(({ node }) => node)).toEqual(["node-a", "node-c"]);
  expect(tidied.replicationFactor).toBe(2);
  expect(tidied.epoch).toBe(coordinator.epoch);
  expect(await volume.node("node-c").epoch()).toBe(coordinator.epoch);
  await expect(coordinator.dropReplica("replica-node-a")).resolves.toBeUndefined();
  await expect(coordinator.dropReplica("replica-node-c")).rejects.toThrow(/last in-sync replica/);
});
