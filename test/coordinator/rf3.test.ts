import { createHash } from "node:crypto";
import { expect, it } from "vitest";
import { BLOCK, MiB, random } from "../store/helpers.js";
import { useCoordinatorSuite } from "./harness.js";

const SIZE = 64 * MiB;
const BATCH = 8;
const suite = useCoordinatorSuite();

it("RF3: random writes land identically on all three replicas", async () => {
  const volume = await suite.createVolume(SIZE, ["in-process", "child", "child"]);
  const coordinator = await suite.attach(volume, "node-a");
  const model = Buffer.alloc(SIZE);
  const rng = random(42);
  const inFlight: Promise<void>[] = [];
  for (let i = 0; i < 400; i++) {
    // Unaligned offsets and lengths up to 256 KiB, some zeroing, in batches of 8 concurrent
    // requests, each in its own 8 MiB stripe (overlapping concurrent writes have no defined result).
    const stripe = i % BATCH;
    const length = 1 + rng.int(256 * 1024);
    const offset = stripe * (SIZE / BATCH) + rng.int(SIZE / BATCH - length);
    if (rng.int(10) === 0) {
      inFlight.push(coordinator.writeZeroes(offset, length, { fua: false, mayPunch: true }));
      model.fill(0, offset, offset + length);
    } else {
      const data = rng.bytes(length);
      inFlight.push(coordinator.write(offset, data, { fua: rng.int(20) === 0 }));
      data.copy(model, offset);
    }
    if (inFlight.length === BATCH) {
      await Promise.all(inFlight.splice(0));
    }
  }
  await coordinator.flush();

  const sums = await volume.checksums();
  expect(new Set(sums.values()).size).toBe(1);
  expect(sums.get("node-a")).toBe(createHash("sha256").update(model).digest("hex"));
  // And through the coordinator (the local replica).
  const back = await coordinator.read(BLOCK, MiB);
  expect(back.equals(model.subarray(BLOCK, BLOCK + MiB))).toBe(true);
  expect(coordinator.state).toBe("serving");
});
