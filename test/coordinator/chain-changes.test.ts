/**
 * Chain changes a coordinator makes on every replica: grow, delete a snapshot, revert to one. A
 * replica that lacks the snapshot (it was rebuilt after the snapshot was taken) is left alone by a
 * delete and removed by a revert, then resynced in full.
 */
import { expect, it } from "vitest";
import { pattern } from "../replication/harness.js";
import { MiB } from "../store/helpers.js";
import { type ChildNode, useCoordinatorSuite } from "./harness.js";

const suite = useCoordinatorSuite();

it("grows every replica, records the size, and grows a replica that was away when it resyncs", async () => {
  const volume = await suite.createVolume(16 * MiB, ["in-process", "child", "child"]);
  const coordinator = await suite.attach(volume, "node-a");
  const away = volume.node("node-c") as ChildNode;
  await away.kill();
  const before = coordinator.epoch;
  await coordinator.resize(48 * MiB);
  expect(coordinator.sizeBytes).toBe(48 * MiB);
  const record = await suite.store.volumes.get(volume.volumeId);
  expect(record.sizeBytes).toBe(48 * MiB);
  expect(record.epoch).toBe(coordinator.epoch);
  expect(coordinator.epoch).toBeGreaterThan(before);
  expect(record.replicas.map(({ node, state }) => `${node}:${state}`)).toEqual([
    "node-a:in-sync",
    "node-b:in-sync",
    "node-c:failed",
  ]);
  await coordinator.write(40 * MiB, pattern(MiB, 4), { fua: true });
  const client = await volume.node("node-b").connect();
  expect((await client.getState(volume.volumeId)).sizeBytes).toBe(48 * MiB);
  expect(await client.read(volume.volumeId, 40 * MiB, MiB)).toEqual(pattern(MiB, 4));
  await client.close();
  await expect(coordinator.resize(32 * MiB)).rejects.toThrow(/cannot shrink/);

  await away.restart();
  const { state: _, ...target } = await volume.target("node-c", "node-a");
  await coordinator.resyncReplica(target).done;
  const sums = new Set(
    await Promise.all(["node-a", "node-b", "node-c"].map((node) => volume.node(node).checksum(48 * MiB))),
  );
  expect(sums.size).toBe(1);
});

it("deletes and reverts snapshots on every replica; a replica without the snapshot leaves on revert", async () => {
  const volume = await suite.createVolume(16 * MiB, ["in-process", "child"]);
  const coordinator = await suite.attach(volume, "node-a");
  await coordinator.write(0, pattern(MiB, 1), { fua: false });
  const kept = await coordinator.snapshot({ id: crypto.randomUUID(), name: "kept" });
  const doomed = await coordinator.snapshot({ id: crypto.randomUUID(), name: "doomed" });
  await coordinator.write(0, pattern(MiB, 2), { fua: false });

  await coordinator.deleteSnapshot(doomed.id);
  expect(
    volume
      .node("node-a")
      .replica!.snapshots()
      .map((s) => s.name),
  ).toEqual(["kept"]);
  // Deleting it again: no replica has it, nothing fails.
  await coordinator.deleteSnapshot(doomed.id);

  // A third replica rebuilt now has no snapshots at all.
  await volume.addNode("node-c", "child");
  const { state: _, ...target } = await volume.target("node-c", "node-a");
  await coordinator.addReplica(target).done;

  await coordinator.revert(kept.id);
  expect(await coordinator.read(0, MiB)).toEqual(pattern(MiB, 1));
  const client = await volume.node("node-b").connect();
  expect(await client.read(volume.volumeId, 0, MiB)).toEqual(pattern(MiB, 1));
  await client.close();
  const record = await suite.store.volumes.get(volume.volumeId);
  expect(record.replicas.map(({ node, state }) => `${node}:${state}`)).toEqual([
    "node-a:in-sync",
    "node-b:in-sync",
    "node-c:failed",
  ]);

  // Resynced, it holds the reverted view: a revert marks every region changed, and the data that
  // moves is what the reverted view holds there, the 1 MiB written before the snapshot.
  const { state: __, ...back } = await volume.target("node-c", "node-a");
  const resync = coordinator.resyncReplica(back);
  await resync.done;
  expect(resync.progress.totalBytes).toBe(MiB);
  const sums = await volume.checksums();
  expect(new Set(sums.values()).size).toBe(1);
});
