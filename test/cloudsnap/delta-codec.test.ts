import { randomBytes } from "node:crypto";
import { describe, expect, it } from "vitest";
import { chunkId } from "../../agent/cloudsnap/chunk-codec.js";
import {
  applyBlocks,
  blocksOf,
  DELTA_BLOCK_BYTES,
  touchedBlocks,
} from "../../agent/cloudsnap/delta-blocks.js";
import { decodeDelta, encodeDelta } from "../../agent/cloudsnap/delta-codec.js";
import { planDelta } from "../../agent/cloudsnap/delta-plan.js";
import { newDataKey, volumeKeys } from "../../agent/cloudsnap/keys.js";
import {
  type ChunkEntry,
  type Manifest,
  openManifest,
  sealManifest,
} from "../../agent/cloudsnap/manifest.js";
import { sealFormat1Manifest } from "./support.js";

const CHUNK = 1024 * 1024;
const keys = volumeKeys(newDataKey());
const location = (id: string, pack = "a".repeat(32)) => ({ id, pack, offset: 7, length: 1000 });

/** A base chunk and the chunk it becomes after writing `blocks`, with the delta between them. */
function changed(blocks: number[]) {
  const base = randomBytes(CHUNK);
  const chunk = Buffer.from(base);
  for (const block of blocks) randomBytes(DELTA_BLOCK_BYTES).copy(chunk, block * DELTA_BLOCK_BYTES);
  const bitmap = touchedBlocks(
    blocks.map((block) => ({ offset: block * DELTA_BLOCK_BYTES, length: DELTA_BLOCK_BYTES })),
    0,
    CHUNK,
    CHUNK,
  );
  return { base, chunk, delta: { id: chunkId(chunk, keys), baseId: chunkId(base, keys), blocks: bitmap } };
}

describe("a delta of a chunk", () => {
  it("names the blocks that runs overlap, partial blocks and a short last chunk included", () => {
    const runs = [
      { offset: 5 * CHUNK + 100, length: 10 }, // inside block 0
      { offset: 5 * CHUNK + 4095, length: 2 }, // blocks 0 and 1
      { offset: 5 * CHUNK + 100 * 1024, length: 8192 }, // blocks 25 and 26
      { offset: 4 * CHUNK, length: CHUNK + 1 }, // the chunk before and the first byte of this one
      { offset: 6 * CHUNK - 1, length: 10 }, // last byte, past a short chunk's end
    ];
    expect(blocksOf(touchedBlocks(runs, 5 * CHUNK, CHUNK, CHUNK))).toEqual([0, 1, 25, 26, 255]);
    expect(blocksOf(touchedBlocks(runs, 5 * CHUNK, 200 * 1024, CHUNK))).toEqual([0, 1, 25, 26]);
  });

  it("is cumulative on the full chunk, and not made past half the chunk", () => {
    const touched = touchedBlocks([{ offset: 0, length: 8192 }], 0, CHUNK, CHUNK);
    const full = location("f".repeat(64));
    const first = planDelta(full, touched, CHUNK);
    expect(first).toEqual({ base: full, blocks: touched });
    const later = touchedBlocks([{ offset: CHUNK / 2, length: 4096 }], 0, CHUNK, CHUNK);
    const second = planDelta({ ...location("d".repeat(64)), delta: first! }, later, CHUNK);
    expect(second?.base).toEqual(full);
    expect(blocksOf(second!.blocks)).toEqual([0, 1, 128]);
    const half = touchedBlocks([{ offset: 0, length: CHUNK / 2 }], 0, CHUNK, CHUNK);
    expect(planDelta(full, half, CHUNK)).toBeDefined();
    expect(planDelta({ ...location("d".repeat(64)), delta: second! }, half, CHUNK)).toBeUndefined();
  });

  it("rebuilds the chunk on its base, and refuses another base, other blocks or altered bytes naming them", async () => {
    const { base, chunk, delta } = changed([3, 4, 200]);
    const sealed = await encodeDelta(delta, chunk, keys);
    expect(sealed.length).toBeLessThan(3 * DELTA_BLOCK_BYTES + 100);
    expect(Buffer.compare(await decodeDelta(delta, sealed, base, keys, "pack p1"), chunk)).toBe(0);

    const other = randomBytes(CHUNK);
    await expect(
      decodeDelta({ ...delta, baseId: chunkId(other, keys) }, sealed, other, keys, "pack p1"),
    ).rejects.toThrow(
      `delta of chunk ${delta.id} on base ${chunkId(other, keys)} in pack p1 does not decrypt: the key is wrong, the object was altered, or it is not this chunk's delta on this base`,
    );
    // The right base's id with another base's bytes: the rebuilt chunk is not the chunk.
    await expect(decodeDelta(delta, sealed, other, keys, "pack p1")).rejects.toThrow(
      `delta of chunk ${delta.id} on base ${delta.baseId} in pack p1 rebuilds other data than the chunk's id says`,
    );
    const fewer = Buffer.from(delta.blocks);
    fewer[25] = 0;
    await expect(decodeDelta({ ...delta, blocks: fewer }, sealed, base, keys, "pack p1")).rejects.toThrow(
      "does not decrypt",
    );
    const flipped = Buffer.from(sealed);
    flipped[40]! ^= 1;
    await expect(decodeDelta(delta, flipped, base, keys, "pack p1")).rejects.toThrow("does not decrypt");
  });

  it("refuses a body that does not fit its blocks or its base", () => {
    const bitmap = touchedBlocks([{ offset: 0, length: 8192 }], 0, CHUNK, CHUNK);
    const base = Buffer.alloc(CHUNK);
    expect(applyBlocks(base, bitmap, Buffer.alloc(4096))).toBe("holds 4096 bytes, fewer than its blocks");
    expect(applyBlocks(base, bitmap, Buffer.alloc(9000))).toBe(
      "holds 9000 bytes, more than its blocks' 8192",
    );
    expect(applyBlocks(Buffer.alloc(4096), bitmap, Buffer.alloc(8192))).toBe(
      "names block 1, past the base's 4096 bytes",
    );
  });
});

describe("a manifest", () => {
  const manifest = (): Manifest => ({
    format: 2,
    volumeId: "v1",
    cloudsnapId: "c1",
    sizeBytes: 8 * CHUNK,
    chunkBytes: CHUNK,
    createdAt: new Date(0).toISOString(),
    chunks: new Map<number, ChunkEntry>([
      [0, location("0".repeat(64))],
      [
        3,
        {
          ...location("3".repeat(64), "b".repeat(32)),
          delta: {
            base: location("1".repeat(64)),
            blocks: touchedBlocks([{ offset: 0, length: 1 }], 0, CHUNK, CHUNK),
          },
        },
      ],
      [7, location("7".repeat(64), "c".repeat(32))],
    ]),
  });
  const open = (sealed: Buffer) => openManifest(sealed, { volumeId: "v1", cloudsnapId: "c1" }, keys, "m1");

  it("round-trips full chunks and deltas in format 2", async () => {
    const written = manifest();
    expect(await open(await sealManifest(written, keys))).toEqual(written);
  });

  it("opens format 1, written before deltas, and writes it again as format 2", async () => {
    const old = manifest();
    old.format = 1;
    old.chunks.delete(3);
    const opened = await open(sealFormat1Manifest(old, keys));
    expect(opened).toEqual(old);
    expect((await open(await sealManifest(opened, keys))).format).toBe(2);
  });
});
