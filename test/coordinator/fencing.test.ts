import { expect, it } from "vitest";
import { BlockIoError } from "../../agent/block-device.js";
import { pattern } from "../replication/harness.js";
import { MiB } from "../store/helpers.js";
import { useCoordinatorSuite } from "./harness.js";

const SIZE = 16 * MiB;
const suite = useCoordinatorSuite();

it("a second coordinator takes the epoch; the first is fenced and changes nothing", async () => {
  const volume = await suite.createVolume(SIZE, ["in-process", "in-process", "in-process"]);
  const first = await suite.attach(volume, "node-a");
  await first.write(0, pattern(MiB, 1), { fua: true });
  const before = await volume.checksums();

  // The pod moved: node-b attaches. Its CAS takes the epoch and it moves every replica on.
  const second = await suite.attach(volume, "node-b");
  const record = await suite.store.volumes.get(volume.volumeId);
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
  expect((await suite.store.volumes.get(volume.volumeId)).replicas).toHaveLength(3);

  // The new coordinator writes normally.
  await second.write(0, pattern(MiB, 4), { fua: true });
  expect((await second.read(0, MiB)).equals(pattern(MiB, 4))).toBe(true);
});
