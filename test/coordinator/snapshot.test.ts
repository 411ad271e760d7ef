import { createHash, randomUUID } from "node:crypto";
import { expect, it } from "vitest";
import { MiB } from "../store/helpers.js";
import { useCoordinatorSuite } from "./harness.js";
import { WriteLoad } from "./load.js";

const SIZE = 32 * MiB;
const suite = useCoordinatorSuite();

it("takes a snapshot at one point of the write stream on every replica", async () => {
  const volume = await suite.createVolume(SIZE, ["in-process", "in-process", "in-process"]);
  const coordinator = await suite.attach(volume, "node-a");
  const load = new WriteLoad(coordinator, 64 * 1024, SIZE / (64 * 1024), 8).start();
  await load.acknowledged(100);
  const id = randomUUID();
  const info = await coordinator.snapshot({ id, name: "consistent" });
  await load.acknowledged(load.count + 100);
  await load.stop();
  expect(load.errors).toEqual([]);
  expect(info.id).toBe(id);

  const sums = [];
  for (const node of volume.nodes) {
    const replica = node.replica!;
    expect(replica.snapshots().map((snapshot) => [snapshot.id, snapshot.name])).toEqual([[id, "consistent"]]);
    const hash = createHash("sha256");
    for (let offset = 0; offset < SIZE; offset += MiB)
      hash.update(await replica.readSnapshot(id, offset, MiB));
    sums.push(hash.digest("hex"));
  }
  expect(new Set(sums).size).toBe(1);
  // The snapshot is not empty and not the live view: writes happened on both sides of it.
  const live = await volume.checksums();
  expect(live.get("node-a")).not.toBe(sums[0]);
  expect(new Set(live.values()).size).toBe(1);
});
