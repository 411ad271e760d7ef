import { randomBytes } from "node:crypto";
import { beforeAll, describe, expect, it } from "vitest";
import { blocksOf, DELTA_BLOCK_BYTES } from "../../agent/cloudsnap/delta-blocks.js";
import type { ChunkEntry } from "../../agent/cloudsnap/manifest.js";
import { sealManifest } from "../../agent/cloudsnap/manifest.js";
import type { CloudsnapRepository } from "../../agent/cloudsnap/repository.js";
import { manifestObject, packObject } from "../../core/cloud/cloudsnap-layout.js";
import { random } from "../store/helpers.js";
import {
  bucketPerSuite,
  MemoryVolume,
  MiB,
  manifestOf,
  repositoryOn,
  restored,
  sealFormat1Manifest,
  take,
} from "./support.js";

const SIZE = 16 * MiB;
const KiB = 1024;
const storage = bucketPerSuite();

/** The entry of chunk `index` in a cloudsnap's manifest. */
async function entryOf(cloudsnapId: string, index: number): Promise<ChunkEntry> {
  const entry = (await manifestOf(storage.bucket, cloudsnapId)).manifest.chunks.get(index);
  if (entry === undefined) throw new Error(`cloudsnap ${cloudsnapId} has no chunk ${index}`);
  return entry;
}

/** The blocks of chunk `chunk` that `[offset, offset + length)` of it covers. */
const blocks = (offset: number, length: number) =>
  Array.from({ length: length / DELTA_BLOCK_BYTES }, (_, i) => offset / DELTA_BLOCK_BYTES + i);

describe("incremental cloudsnaps that store changed chunks as deltas", () => {
  let repo: CloudsnapRepository;
  beforeAll(() => {
    repo = repositoryOn(storage.bucket);
  });

  it("restores every cloudsnap of a chain full → delta → cumulative delta → full again → delta on the new base, each on its own", async () => {
    const volume = new MemoryVolume(SIZE);
    volume.write(0, randomBytes(8 * MiB));
    const chain: { id: string; bytes: Buffer }[] = [];
    const snap = async () => {
      const cloudsnap = await take(repo, volume);
      chain.push({ id: cloudsnap.id, bytes: Buffer.from(volume.bytes) });
      return cloudsnap;
    };
    const full = await snap();
    const base2 = await entryOf(full.id, 2);
    expect(base2.delta).toBeUndefined();

    volume.write(2 * MiB + 40 * KiB, randomBytes(8 * KiB)); // blocks 10-11 of chunk 2
    volume.write(5 * MiB, randomBytes(4 * KiB)); // block 0 of chunk 5
    const delta = await snap();
    expect(delta).toMatchObject({ incremental: true, newChunks: 2 });
    expect(delta.uploadedBytes).toBeLessThan(12 * KiB + 200);
    const first2 = await entryOf(delta.id, 2);
    expect(first2.delta?.base).toEqual(base2);
    expect(blocksOf(first2.delta!.blocks)).toEqual(blocks(40 * KiB, 8 * KiB));

    volume.write(2 * MiB + 400 * KiB, randomBytes(8 * KiB)); // blocks 100-101 of chunk 2
    const cumulative = await snap();
    expect(cumulative).toMatchObject({ newChunks: 1 });
    const second2 = await entryOf(cumulative.id, 2);
    // Still on the full chunk, not on the previous delta, with the blocks of both.
    expect(second2.delta?.base).toEqual(base2);
    expect(blocksOf(second2.delta!.blocks)).toEqual([
      ...blocks(40 * KiB, 8 * KiB),
      ...blocks(400 * KiB, 8 * KiB),
    ]);
    expect(await entryOf(cumulative.id, 5)).toEqual(await entryOf(delta.id, 5));

    volume.write(2 * MiB + 512 * KiB, randomBytes(500 * KiB)); // with the 16 blocks before, past half
    const grown = await snap();
    const full2 = await entryOf(grown.id, 2);
    expect(full2.delta).toBeUndefined();
    expect(grown.uploadedBytes).toBeGreaterThan(MiB);

    volume.write(2 * MiB + 4 * KiB, randomBytes(4 * KiB));
    const onNewBase = await snap();
    const third2 = await entryOf(onNewBase.id, 2);
    expect(third2.delta?.base).toEqual({
      id: full2.id,
      pack: full2.pack,
      offset: full2.offset,
      length: full2.length,
    });
    expect(blocksOf(third2.delta!.blocks)).toEqual([1]);

    for (const { id, bytes } of chain) {
      expect(Buffer.compare((await restored(repo, id, SIZE)).target, bytes)).toBe(0);
    }
  });

  it("stores a chunk written back to its base's data as that base, and one zeroed as nothing", async () => {
    const volume = new MemoryVolume(SIZE);
    volume.write(0, randomBytes(2 * MiB));
    const full = await take(repo, volume);
    const original = Buffer.from(volume.bytes.subarray(12 * KiB, 16 * KiB));
    volume.write(12 * KiB, randomBytes(4 * KiB));
    volume.write(MiB, Buffer.alloc(MiB));
    await take(repo, volume);
    volume.write(12 * KiB, original);
    const back = await take(repo, volume);
    expect(back).toMatchObject({ newChunks: 0, uploadedBytes: 0, chunks: 1 });
    expect(await entryOf(back.id, 0)).toEqual(await entryOf(full.id, 0));
    expect(Buffer.compare((await restored(repo, back.id, SIZE)).target, volume.bytes)).toBe(0);
  });

  it("uploads close to the changed bytes after scattered 64 KiB writes, reading only the chunks they touch", async () => {
    const size = 64 * MiB;
    const volume = new MemoryVolume(size);
    volume.write(0, randomBytes(size));
    await take(repo, volume);
    // 5% of the volume in 64 KiB writes at distinct 4 KiB-aligned places, as a database's pages land.
    // Each write lands in a 128 KiB slot of its own, so no two overlap.
    const rng = random(9);
    const write = 64 * KiB;
    const slot = 2 * write;
    const slots = new Set<number>();
    while (slots.size < (0.05 * size) / write) slots.add(rng.int(size / slot));
    const touched = new Set<number>();
    for (const n of slots) {
      const offset = n * slot + rng.int((slot - write) / DELTA_BLOCK_BYTES + 1) * DELTA_BLOCK_BYTES;
      volume.write(offset, randomBytes(write));
      touched.add(Math.floor(offset / MiB));
    }
    const changed = slots.size * write;
    const incremental = await take(repo, volume);
    expect(incremental.scannedBytes).toBe(touched.size * MiB);
    expect(incremental.uploadedBytes).toBeLessThanOrEqual(1.1 * changed);
    expect(incremental.uploadedBytes).toBeGreaterThanOrEqual(changed);
    expect(Buffer.compare((await restored(repo, incremental.id, size)).target, volume.bytes)).toBe(0);
  });

  it("refuses, naming the object, a tampered delta, a tampered or missing base and a delta on another base", async () => {
    const volume = new MemoryVolume(SIZE);
    volume.write(0, randomBytes(2 * MiB));
    await take(repo, volume);
    volume.write(8 * KiB, randomBytes(4 * KiB));
    const cloudsnap = await take(repo, volume);
    const { manifest, keys } = await manifestOf(storage.bucket, cloudsnap.id);
    const entry = manifest.chunks.get(0)!;
    const base = entry.delta!.base;
    const other = manifest.chunks.get(1)!;
    const deltaKey = packObject(volume.id, entry.pack);
    const baseKey = packObject(volume.id, base.pack);
    expect(deltaKey).not.toBe(baseKey);
    const restore = () => restored(repo, cloudsnap.id, SIZE);
    const withFlipped = async (key: string, at: number, check: () => Promise<void>) => {
      const pack = await storage.bucket.get(key);
      const flipped = Buffer.from(pack);
      flipped[at]! ^= 0x10;
      await storage.bucket.put(key, flipped);
      await check();
      await storage.bucket.put(key, pack);
    };

    await withFlipped(deltaKey, entry.offset + entry.length - 20, async () => {
      await expect(restore()).rejects.toThrow(
        `delta of chunk ${entry.id} on base ${base.id} in s3://cloudsnaps/${deltaKey} does not decrypt`,
      );
    });
    await withFlipped(baseKey, base.offset + 100, async () => {
      await expect(restore()).rejects.toThrow(
        `chunk ${base.id} in s3://cloudsnaps/${baseKey} does not decrypt`,
      );
    });
    const basePack = await storage.bucket.get(baseKey);
    await storage.bucket.delete([baseKey]);
    await expect(restore()).rejects.toThrow(`s3://cloudsnaps/${baseKey} is missing`);
    await storage.bucket.put(baseKey, basePack);

    const manifestKey = manifestObject(volume.id, cloudsnap.id);
    const sealed = await storage.bucket.get(manifestKey);
    const { delta: _, ...otherBase } = other;
    manifest.chunks.set(0, { ...entry, delta: { ...entry.delta!, base: otherBase } });
    await storage.bucket.put(manifestKey, await sealManifest(manifest, keys));
    await expect(restore()).rejects.toThrow(
      `delta of chunk ${entry.id} on base ${other.id} in s3://cloudsnaps/${deltaKey} does not decrypt: the key is wrong, the object was altered, or it is not this chunk's delta on this base`,
    );
    await storage.bucket.put(manifestKey, sealed);
    expect(Buffer.compare((await restore()).target, volume.bytes)).toBe(0);
  });

  it("restores a format-1 manifest written before deltas, and takes deltas on its chunks", async () => {
    const volume = new MemoryVolume(SIZE);
    volume.write(MiB, randomBytes(3 * MiB));
    const old = await take(repo, volume);
    const afterOld = Buffer.from(volume.bytes);
    const { manifest, keys, key } = await manifestOf(storage.bucket, old.id);
    await storage.bucket.put(key, sealFormat1Manifest(manifest, keys));
    const reopened = await manifestOf(storage.bucket, old.id);
    expect(reopened.manifest.format).toBe(1);
    expect(reopened.manifest.chunks).toEqual(manifest.chunks);
    expect(Buffer.compare((await restored(repo, old.id, SIZE)).target, afterOld)).toBe(0);

    volume.write(2 * MiB + 64 * KiB, randomBytes(16 * KiB));
    const next = await take(repo, volume);
    expect((await entryOf(next.id, 2)).delta?.base).toEqual(manifest.chunks.get(2));
    expect(Buffer.compare((await restored(repo, next.id, SIZE)).target, volume.bytes)).toBe(0);
    expect(Buffer.compare((await restored(repo, old.id, SIZE)).target, afterOld)).toBe(0);
  });
});
