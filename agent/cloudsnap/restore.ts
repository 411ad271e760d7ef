import type { CloudsnapBucket } from "../../core/cloud/cloudsnap-bucket.js";
import { eachConcurrently } from "../../core/concurrency.js";
import { decodeChunk } from "./chunk-codec.js";
import { decodeDelta } from "./delta-codec.js";
import type { VolumeKeys } from "./keys.js";
import type { ChunkDelta, ChunkLocation, Manifest } from "./manifest.js";
import { type PackRead, placeOf, planPackReads, readPack } from "./pack-reads.js";

/** Ranges fetched, decrypted and written at once. */
const FETCH_CONCURRENCY = 4;
/**
 * Neighbouring chunks of a fetched range are written as one request up to this size: each write of
 * a new volume goes to every replica, and at 1 MiB per request the replicas' round trips, not the
 * bytes, set the restore's pace. Bounded, because a range of well-compressed chunks inflates to far
 * more than the range.
 */
const WRITE_BYTES = 8 * 1024 * 1024;
/**
 * The deltas on the bases of consecutive ranges are fetched together, up to this many sealed bytes
 * and this many ranges: one upload's deltas sit together in its packs, so the deltas of a few
 * ranges come in a request or two instead of a few per range, while what a restore holds stays at
 * its concurrency × (a range + this), as before deltas, and enough batches remain to run at once.
 */
const DELTA_BATCH_BYTES = 8 * 1024 * 1024;
const DELTA_BATCH_RANGES = 8;

export interface RestoreProgress {
  /** Plaintext bytes written. */
  restoredBytes: number;
  totalBytes: number;
  chunks: number;
  totalChunks: number;
  requests: number;
}

export interface RestoreRequest {
  bucket: CloudsnapBucket;
  keys: VolumeKeys;
  manifest: Manifest;
  /** Writes restored bytes at a volume offset (every replica of the new volume). */
  write(offset: number, data: Buffer): Promise<void>;
  onProgress?: (progress: RestoreProgress) => void;
}

/**
 * A stored full chunk: every volume chunk index it fills, and the deltas that rebuild other chunks
 * on it (keyed by place). A base no index names itself has no indexes.
 */
interface StoredChunk {
  location: ChunkLocation;
  indexes: number[];
  deltas: Map<string, StoredDelta>;
}

/** A stored delta and every volume chunk index the chunk it rebuilds fills. */
interface StoredDelta {
  location: ChunkLocation;
  delta: ChunkDelta;
  indexes: number[];
}

/**
 * Writes every chunk the manifest names into the target; the chunks it does not name are zeros,
 * which a new (thin) volume already reads. Every chunk is checked after decryption against its id,
 * and a chunk whose size does not fit its place is refused: a failure names the object and the
 * chunk, and the caller discards what was written. Full chunks are fetched in ranged reads of
 * neighbours (pack-reads.ts), bases with them. The deltas on the bases of a few consecutive ranges
 * are fetched first, together (they are small, and they sit together in the packs of the uploads
 * that made them), then each range, whose bases rebuild their deltas' chunks.
 */
export async function restoreCloudsnap(request: RestoreRequest): Promise<RestoreProgress> {
  const { bucket, keys, manifest } = request;
  const progress: RestoreProgress = {
    restoredBytes: 0,
    totalBytes: 0,
    chunks: 0,
    totalChunks: manifest.chunks.size,
    requests: 0,
  };
  for (const index of manifest.chunks.keys()) progress.totalBytes += spanOf(manifest, index);
  const fill = async (
    plaintext: Buffer,
    indexes: readonly number[],
    what: string,
    writes: CoalescedWrites,
  ) => {
    for (const index of indexes) {
      if (plaintext.length > spanOf(manifest, index)) {
        throw new Error(`${what} holds ${plaintext.length} bytes, more than chunk ${index} of the volume`);
      }
      await writes.add(index * manifest.chunkBytes, plaintext);
      progress.restoredBytes += plaintext.length;
      progress.chunks++;
    }
  };
  const readRange = async <T extends { location: ChunkLocation }>(read: PackRead<T>) => {
    const fetched = await readPack(bucket, manifest.volumeId, read);
    progress.requests++;
    return fetched;
  };
  const ranges = planPackReads(storedChunks(manifest).values());
  await eachConcurrently(batchesOf(ranges), FETCH_CONCURRENCY, async (batch) => {
    const deltas = new Map<string, { sealed: Buffer; where: string }>();
    for (const read of planPackReads(batch.flatMap(deltasOn))) {
      for (const { chunk, sealed, where } of await readRange(read))
        deltas.set(placeOf(chunk.location), { sealed, where });
    }
    for (const range of batch) {
      const chunks = await readRange(range);
      const writes = new CoalescedWrites(request.write);
      // Upload workers interleave a pack's chunks; in volume order, neighbours join into one write.
      chunks.sort((a, b) => firstIndex(a.chunk) - firstIndex(b.chunk));
      for (const { chunk, sealed, where } of chunks) {
        const plaintext = await decodeChunk(chunk.location.id, sealed, keys, where);
        await fill(plaintext, chunk.indexes, `chunk ${chunk.location.id} in ${where}`, writes);
        for (const stored of chunk.deltas.values()) {
          const { id } = stored.location;
          const fetched = deltas.get(placeOf(stored.location))!;
          const delta = { id, baseId: stored.delta.base.id, blocks: stored.delta.blocks };
          const rebuilt = await decodeDelta(delta, fetched.sealed, plaintext, keys, fetched.where);
          await fill(rebuilt, stored.indexes, `delta of chunk ${id} in ${fetched.where}`, writes);
        }
      }
      await writes.flush();
      request.onProgress?.(progress);
    }
  });
  return progress;
}

/**
 * Consecutive ranges whose deltas are fetched together: up to DELTA_BATCH_BYTES of deltas and
 * DELTA_BATCH_RANGES ranges. A range without deltas is a batch of its own, as every range was
 * before deltas.
 */
function batchesOf(ranges: readonly PackRead<StoredChunk>[]): PackRead<StoredChunk>[][] {
  const batches: PackRead<StoredChunk>[][] = [];
  let current: { ranges: PackRead<StoredChunk>[]; bytes: number } | undefined;
  for (const range of ranges) {
    const bytes = deltasOn(range).reduce((sum, { location }) => sum + location.length, 0);
    if (
      bytes === 0 ||
      current === undefined ||
      current.bytes + bytes > DELTA_BATCH_BYTES ||
      current.ranges.length >= DELTA_BATCH_RANGES
    ) {
      current = { ranges: [range], bytes };
      batches.push(current.ranges);
      if (bytes === 0) current = undefined;
    } else {
      current.ranges.push(range);
      current.bytes += bytes;
    }
  }
  return batches;
}

const deltasOn = (range: PackRead<StoredChunk>) => range.chunks.flatMap(({ deltas }) => [...deltas.values()]);

const firstIndex = (chunk: StoredChunk) =>
  Math.min(
    chunk.indexes[0] ?? Number.MAX_SAFE_INTEGER,
    ...[...chunk.deltas.values()].map((d) => d.indexes[0]!),
  );

/** The full chunks to fetch, by place, each with the deltas on it (equal objects are fetched once). */
function storedChunks(manifest: Manifest): Map<string, StoredChunk> {
  const stored = new Map<string, StoredChunk>();
  const full = (location: ChunkLocation) => {
    const { id, pack, offset, length } = location;
    let found = stored.get(placeOf(location));
    if (found === undefined) {
      found = { location: { id, pack, offset, length }, indexes: [], deltas: new Map() };
      stored.set(placeOf(location), found);
    }
    return found;
  };
  for (const [index, entry] of manifest.chunks) {
    if (entry.delta === undefined) {
      full(entry).indexes.push(index);
      continue;
    }
    const { deltas } = full(entry.delta.base);
    const found = deltas.get(placeOf(entry));
    if (found === undefined)
      deltas.set(placeOf(entry), { location: entry, delta: entry.delta, indexes: [index] });
    else found.indexes.push(index);
  }
  return stored;
}

/** Joins writes that continue one another into requests of up to WRITE_BYTES. */
class CoalescedWrites {
  private pending: Buffer[] = [];
  private offset = 0;
  private bytes = 0;

  constructor(private readonly write: RestoreRequest["write"]) {}

  async add(offset: number, data: Buffer): Promise<void> {
    if (offset !== this.offset + this.bytes || this.bytes + data.length > WRITE_BYTES) await this.flush();
    if (this.pending.length === 0) this.offset = offset;
    this.pending.push(data);
    this.bytes += data.length;
  }

  async flush(): Promise<void> {
    if (this.pending.length === 0) return;
    const data = this.pending.length === 1 ? this.pending[0]! : Buffer.concat(this.pending, this.bytes);
    const offset = this.offset;
    this.pending = [];
    this.bytes = 0;
    await this.write(offset, data);
  }
}

/** How many bytes of the volume chunk `index` covers (the last one may be short). */
function spanOf(manifest: Manifest, index: number): number {
  return Math.min(manifest.chunkBytes, manifest.sizeBytes - index * manifest.chunkBytes);
}
