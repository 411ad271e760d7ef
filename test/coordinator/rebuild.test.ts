import { expect, it } from "vitest";
import { pattern } from "../replication/harness.js";
import { MiB } from "../store/helpers.js";
import { useCoordinatorSuite } from "./harness.js";
import { WriteLoad } from "./load.js";

const SIZE = 256 * MiB;
const WRITTEN = 64 * MiB;
const suite = useCoordinatorSuite();

it("adds a third replica under I/O, copying only the allocated data", async () => {
  const volume = await suite.createVolume(SIZE, ["in-process", "child"]);
  const coordinator = await suite.attach(volume, "node-a");
  // 64 MiB in 1 MiB pieces, one every 4 MiB: three quarters of the volume stay unallocated.
  for (let i = 0; i < WRITTEN / MiB; i++) {
    await coordinator.write(i * 4 * MiB, pattern(MiB, i + 1), { fua: false });
  }
  await volume.addNode("node-c", "child");

  // A writer keeps going over the whole volume, in 64 KiB slots, during the rebuild.
  const load = new WriteLoad(coordinator, 64 * 1024, SIZE / (64 * 1024), 4).start();
  await load.acknowledged(20);
  const { state: _, ...target } = await volume.target("node-c", "node-a");
  const rebuild = coordinator.addReplica(target);
  const result = await rebuild.done;
  await load.acknowledged(load.count + 20);
  await load.stop();
  expect(load.errors).toEqual([]);

  const { totalBytes, copiedBytes, phase } = rebuild.progress;
  expect(phase).toBe("in-sync");
  expect(copiedBytes).toBe(totalBytes);
  // What was allocated when it joined: the 64 MiB plus what the writer had written by then.
  expect(totalBytes).toBeGreaterThanOrEqual(WRITTEN);
  expect(totalBytes).toBeLessThanOrEqual(WRITTEN + load.count * 64 * 1024);
  expect(totalBytes).toBeLessThan(SIZE / 2);
  console.log(
    `rebuild copied ${(result.copiedBytes / MiB).toFixed(1)} MiB of a ${SIZE / MiB} MiB volume in ` +
      `${result.durationMs.toFixed(0)} ms: ${(result.bytesPerSecond / 1e6).toFixed(0)} MB/s ` +
      `(${load.count} client writes ran alongside)`,
  );

  const record = await suite.store.volumes.get(volume.volumeId);
  expect(record.replicas.map(({ node, state }) => ({ node, state }))).toEqual([
    { node: "node-a", state: "in-sync" },
    { node: "node-b", state: "in-sync" },
    { node: "node-c", state: "in-sync" },
  ]);
  expect(coordinator.replicas().map((replica) => replica.state)).toEqual(["in-sync", "in-sync", "in-sync"]);
  expect(await volume.node("node-c").epoch()).toBe(record.epoch);

  const sums = await volume.checksums();
  expect(sums.get("node-c")).toBe(sums.get("node-a"));
  expect(sums.get("node-b")).toBe(sums.get("node-a"));
  const local = volume.node("node-a").replica!;
  expect(await load.missing((offset, length) => local.read(offset, length))).toEqual([]);
});
