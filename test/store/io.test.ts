import { afterEach, beforeEach, describe, expect, it } from "vitest";
import type { Replica } from "../../agent/store/replica.js";
import { BLOCK, createReplica, expectSameBytes, filled, MiB, random, tempDir } from "./helpers.js";

const VOLUME = 8 * MiB;
const NO_FUA = { fua: false };

describe("replica reads and writes", () => {
  let dir: Awaited<ReturnType<typeof tempDir>>;
  let replica: Replica;

  beforeEach(async () => {
    dir = await tempDir();
    replica = await createReplica(dir.path, VOLUME);
  });
  afterEach(async () => {
    await replica.close();
    await dir.cleanup();
  });

  it("reads zeros from a fresh volume", async () => {
    expect((await replica.read(12345, 3 * BLOCK)).equals(Buffer.alloc(3 * BLOCK))).toBe(true);
  });

  it("matches a model after random aligned and unaligned writes, zeroes and trims", async () => {
    const model = Buffer.alloc(VOLUME);
    const rng = random(1);
    for (let i = 0; i < 600; i++) {
      const aligned = rng.int(2) === 0;
      const offset = aligned ? rng.int(VOLUME / BLOCK) * BLOCK : rng.int(VOLUME);
      const maxLength = Math.min(VOLUME - offset, 300 * 1024);
      const length = aligned
        ? Math.max(BLOCK, Math.floor((1 + rng.int(maxLength)) / BLOCK) * BLOCK)
        : 1 + rng.int(maxLength);
      if (offset + length > VOLUME) continue;
      const op = rng.int(10);
      if (op < 7) {
        const data = rng.bytes(length);
        await replica.write(offset, data, NO_FUA);
        data.copy(model, offset);
      } else {
        await replica.writeZeroes(offset, length, { fua: false, mayPunch: op === 7 });
        model.fill(0, offset, offset + length);
      }
      if (i % 100 === 0) await expectSameBytes((o, l) => replica.read(o, l), model);
    }
    await expectSameBytes((o, l) => replica.read(o, l), model);
    // Unaligned reads cross runs from different layers and zero regions.
    for (let i = 0; i < 200; i++) {
      const offset = rng.int(VOLUME - 1);
      const length = 1 + rng.int(Math.min(VOLUME - offset, 64 * 1024));
      expect((await replica.read(offset, length)).equals(model.subarray(offset, offset + length))).toBe(true);
    }
  });

  it("never loses either of two concurrent unaligned writes to different bytes of one block", async () => {
    const model = Buffer.alloc(4 * BLOCK);
    const writes: Promise<void>[] = [];
    // 64 writes of 64 bytes each, all landing in blocks 0..3, some spanning two blocks.
    for (let i = 0; i < 64; i++) {
      const offset = i * 256 + 100;
      const data = filled(64, i + 1);
      data.copy(model, offset);
      writes.push(replica.write(offset, data, NO_FUA));
    }
    await Promise.all(writes);
    expect((await replica.read(0, 4 * BLOCK)).equals(model)).toBe(true);
  });

  it("keeps concurrent unaligned writes and zeroes of the same block consistent", async () => {
    const model = Buffer.alloc(2 * BLOCK);
    await replica.write(0, filled(2 * BLOCK, 9), NO_FUA);
    model.fill(9);
    const ops: Promise<void>[] = [];
    for (let i = 0; i < 16; i++) {
      const offset = 37 + i * 500;
      if (i % 3 === 0) {
        ops.push(replica.writeZeroes(offset, 100, { fua: false, mayPunch: true }));
        model.fill(0, offset, offset + 100);
      } else {
        ops.push(replica.write(offset, filled(100, i), NO_FUA));
        model.fill(i, offset, offset + 100);
      }
    }
    await Promise.all(ops);
    expect((await replica.read(0, 2 * BLOCK)).equals(model)).toBe(true);
  });

  it("writes zeros over partial blocks and leaves the rest of those blocks", async () => {
    await replica.write(0, filled(3 * BLOCK, 7), NO_FUA);
    await replica.writeZeroes(100, 2 * BLOCK, { fua: true, mayPunch: true });
    const expected = filled(3 * BLOCK, 7).fill(0, 100, 100 + 2 * BLOCK);
    expect((await replica.read(0, 3 * BLOCK)).equals(expected)).toBe(true);
  });

  it("trims whole blocks to zeros and keeps the partial edges it cannot free", async () => {
    await replica.write(0, filled(4 * BLOCK, 5), NO_FUA);
    await replica.trim(BLOCK / 2, 3 * BLOCK, NO_FUA);
    const after = await replica.read(0, 4 * BLOCK);
    expect(after.equals(filled(4 * BLOCK, 5).fill(0, BLOCK, 3 * BLOCK))).toBe(true);
  });

  it("refuses I/O after close with ESHUTDOWN", async () => {
    await replica.close();
    await expect(replica.read(0, BLOCK)).rejects.toMatchObject({ name: "BlockIoError", errno: "ESHUTDOWN" });
    await expect(replica.write(0, filled(BLOCK, 1), NO_FUA)).rejects.toMatchObject({ errno: "ESHUTDOWN" });
  });
});
