import { randomBytes } from "node:crypto";
import { beforeAll, describe, expect, it } from "vitest";
import type { CloudsnapRepository } from "../../agent/cloudsnap/repository.js";
import { catalogObject, manifestObject, packsPrefix } from "../../core/cloud/cloudsnap-layout.js";
import {
  bucketPerSuite,
  keysUnder,
  MemoryVolume,
  MiB,
  repositoryOn,
  restored,
  SOLE_WRITER,
  take,
} from "./support.js";

const SIZE = 48 * MiB;
const storage = bucketPerSuite();
const repository = (passphrase?: string) => repositoryOn(storage.bucket, passphrase);

describe("a cloudsnap repository on an S3-compatible bucket", () => {
  let repo: CloudsnapRepository;
  beforeAll(() => {
    repo = repository();
  });

  it("restores full and incremental cloudsnaps byte for byte, each on its own", async () => {
    const volume = new MemoryVolume(SIZE);
    volume.write(0, randomBytes(3 * MiB));
    volume.write(20 * MiB + 4096, randomBytes(5 * MiB));
    volume.write(SIZE - 4096, randomBytes(4096));
    const full = await take(repo, volume);
    const afterFull = Buffer.from(volume.bytes);
    expect(full).toMatchObject({ incremental: false, chunks: 10, newChunks: 10 });

    volume.write(MiB, randomBytes(8192)); // changes chunk 1 only
    volume.write(30 * MiB, Buffer.alloc(MiB)); // zeros over zeros: stays sparse
    volume.write(20 * MiB + 4096, Buffer.alloc(4 * MiB)); // zeros over data: chunks 20-23 now zeros
    const second = await take(repo, volume);
    expect(second).toMatchObject({ incremental: true, newChunks: 2 });
    expect(second.scannedBytes).toBe(7 * MiB);

    const fromFull = await restored(repo, full.id, SIZE);
    expect(Buffer.compare(fromFull.target, afterFull)).toBe(0);
    // A restore reads the catalog, the key, the manifest and then whole runs of packs, never a chunk
    // at a time. Shown on the full cloudsnap, whose chunks fill one pack: the incremental's ranges
    // depend on the order the upload's workers packed the chunks in (its bases are scattered among
    // dead chunks), so their count varies from run to run.
    expect(fromFull.progress.requests).toBeLessThan(fromFull.progress.chunks);
    const { target } = await restored(repo, second.id, SIZE);
    expect(Buffer.compare(target, volume.bytes)).toBe(0);
    expect((await repo.list(volume.id)).map((c) => c.id)).toEqual([full.id, second.id]);
  });

  it("writes the neighbouring chunks of a fetched range as one request, not one per chunk", async () => {
    const volume = new MemoryVolume(SIZE);
    volume.write(0, randomBytes(20 * MiB));
    const { id } = await take(repo, volume);

    const { target, progress, writes } = await restored(repo, id, SIZE);

    expect(Buffer.compare(target, volume.bytes)).toBe(0);
    expect(progress.chunks).toBe(20);
    // The suite's packs hold 4 chunks, which the upload's workers interleave: about one write per
    // pack, and far fewer than one per chunk.
    expect(writes.length).toBeLessThan(progress.chunks / 2);
    expect(writes.every(([, length]) => length <= 8 * MiB)).toBe(true);
    expect(writes.reduce((sum, [, length]) => sum + length, 0)).toBe(20 * MiB);
  });

  it("uploads no chunk data for an unchanged volume, incremental or read in full", async () => {
    const volume = new MemoryVolume(SIZE);
    volume.write(4 * MiB, randomBytes(6 * MiB));
    const first = await take(repo, volume);
    const unchanged = await take(repo, volume);
    expect(unchanged).toMatchObject({ incremental: true, scannedBytes: 0, uploadedBytes: 0, chunks: 6 });
    // The base snapshot gone: everything is read again, and dedupe finds every chunk stored.
    const reread = await take(repo, volume, { incremental: false });
    expect(reread).toMatchObject({ incremental: false, scannedBytes: SIZE, uploadedBytes: 0, newChunks: 0 });
    expect(first.uploadedBytes).toBeGreaterThan(6 * MiB);
    expect(Buffer.compare((await restored(repo, reread.id, SIZE)).target, volume.bytes)).toBe(0);
  });

  it("stores equal chunks once", async () => {
    const volume = new MemoryVolume(SIZE);
    const block = randomBytes(MiB);
    for (let i = 0; i < 8; i++) volume.write(i * 3 * MiB, block);
    const cloudsnap = await take(repo, volume);
    expect(cloudsnap).toMatchObject({ chunks: 8, newChunks: 1 });
    expect(cloudsnap.uploadedBytes).toBeLessThan(1.01 * MiB);
    expect(Buffer.compare((await restored(repo, cloudsnap.id, SIZE)).target, volume.bytes)).toBe(0);
  });

  it("restores from another cluster's repository with the passphrase alone, and refuses a wrong one", async () => {
    const volume = new MemoryVolume(SIZE);
    volume.write(MiB, randomBytes(2 * MiB));
    const cloudsnap = await take(repo, volume);
    const elsewhere = repository(); // a new process: its own salt, the bucket's key file
    expect(Buffer.compare((await restored(elsewhere, cloudsnap.id, SIZE)).target, volume.bytes)).toBe(0);
    await expect(restored(repository("wrong"), cloudsnap.id, SIZE)).rejects.toThrow(
      `the data key of volume ${volume.id} does not unwrap: wrong passphrase or key`,
    );
  });

  it("refuses, naming the object, a tampered pack, a tampered or missing manifest and a missing pack", async () => {
    const volume = new MemoryVolume(SIZE);
    volume.write(0, randomBytes(2 * MiB));
    const cloudsnap = await take(repo, volume);
    const manifestKey = manifestObject(volume.id, cloudsnap.id);
    const manifest = await storage.bucket.get(manifestKey);
    const [packKey] = await keysUnder(storage.bucket, packsPrefix(volume.id));
    const pack = await storage.bucket.get(packKey!);

    const flipped = Buffer.from(pack);
    flipped[pack.length - 100]! ^= 0x40;
    await storage.bucket.put(packKey!, flipped);
    await expect(restored(repo, cloudsnap.id, SIZE)).rejects.toThrow(
      new RegExp(`chunk [0-9a-f]{64} in s3://cloudsnaps/${packKey} does not decrypt`),
    );
    await storage.bucket.delete([packKey!]);
    await expect(restored(repo, cloudsnap.id, SIZE)).rejects.toThrow(`s3://cloudsnaps/${packKey} is missing`);
    await storage.bucket.put(packKey!, pack);

    const tampered = Buffer.from(manifest);
    tampered[20]! ^= 1;
    await storage.bucket.put(manifestKey, tampered);
    await expect(restored(repo, cloudsnap.id, SIZE)).rejects.toThrow(
      `manifest s3://cloudsnaps/${manifestKey} does not decrypt: the key is wrong or the object was altered`,
    );
    await storage.bucket.delete([manifestKey]);
    await expect(restored(repo, cloudsnap.id, SIZE)).rejects.toThrow(
      `s3://cloudsnaps/${manifestKey} is missing`,
    );
    await storage.bucket.put(manifestKey, manifest);
    expect(Buffer.compare((await restored(repo, cloudsnap.id, SIZE)).target, volume.bytes)).toBe(0);

    await expect(repo.get(`${volume.id}-20990101T000000000Z`)).rejects.toThrow(
      `cloudsnap ${volume.id}-20990101T000000000Z (in s3://cloudsnaps) not found`,
    );
    await expect(repo.get("pg-data")).rejects.toThrow('"pg-data" is not a cloudsnap id');
  });

  it("lists nothing half-written when the bucket goes away mid-upload, and collects what was left", async () => {
    const volume = new MemoryVolume(SIZE);
    volume.write(0, randomBytes(4 * MiB));
    const first = await take(repo, volume);
    volume.write(10 * MiB, randomBytes(20 * MiB));
    const source = volume.snapshot(true);
    let reads = 0;
    const failing = repo.take(
      {
        volumeId: volume.id,
        volumeName: "pg-data",
        replicationFactor: 2,
        snapshotId: crypto.randomUUID(),
        since: first.snapshotId,
        source: {
          ...source,
          read: async (offset, length) => {
            // Halfway through, the bucket's server stops; it comes back after the upload gave up.
            if (++reads === 10) await storage.s3.close();
            return source.read(offset, length);
          },
        },
      },
      SOLE_WRITER,
    );
    await expect(failing).rejects.toThrow(/cannot (write|read) s3:\/\/cloudsnaps\//);
    await storage.restart();
    const repo2 = repository();
    expect((await repo2.list(volume.id)).map((c) => c.id)).toEqual([first.id]);
    const packsBefore = (await keysUnder(storage.bucket, packsPrefix(volume.id))).length;
    const collected = await repo2.collectGarbage(volume.id, SOLE_WRITER);
    expect(collected.packsDeleted).toBe(packsBefore - 1);
    expect(
      Buffer.compare(
        (await restored(repo2, first.id, SIZE)).target.subarray(0, 4 * MiB),
        volume.bytes.subarray(0, 4 * MiB),
      ),
    ).toBe(0);
  });

  it("deletes a cloudsnap without losing a chunk another still needs, and frees the rest", async () => {
    const repo2 = repository();
    const volume = new MemoryVolume(SIZE);
    volume.write(0, randomBytes(4 * MiB));
    const first = await take(repo2, volume);
    volume.write(8 * MiB, randomBytes(4 * MiB));
    const second = await take(repo2, volume);
    await repo2.delete(first.id, SOLE_WRITER);
    await repo2.collectGarbage(volume.id, SOLE_WRITER);
    expect(Buffer.compare((await restored(repo2, second.id, SIZE)).target, volume.bytes)).toBe(0);
    await repo2.delete(second.id, SOLE_WRITER);
    expect(await repo2.collectGarbage(volume.id, SOLE_WRITER)).toMatchObject({ manifestsDeleted: 0 });
    expect(await keysUnder(storage.bucket, packsPrefix(volume.id))).toEqual([]);
    expect(JSON.parse((await storage.bucket.get(catalogObject(volume.id))).toString()).cloudsnaps).toEqual(
      [],
    );
    await expect(restored(repo2, first.id, SIZE)).rejects.toThrow("not found");
  });
});
