import type { CloudsnapBucket } from "../../core/cloud/cloudsnap-bucket.js";
import { eachConcurrently } from "../../core/concurrency.js";
import { decodeChunk } from "./chunk-codec.js";
import type { VolumeKeys } from "./keys.js";
import type { ChunkLocation, Manifest } from "./manifest.js";
import { placeOf, planPackReads, readPack } from "./pack-reads.js";

/** Ranges fetched, decrypted and written at once. */
const FETCH_CONCURRENCY = 4;
/**
 * Neighbouring chunks of a fetched range are written as one request up to this size: each write of
 * a new volume goes to every replica, and at 1 MiB per request the replicas' round trips, not the
 * bytes, set the restore's pace. Bounded, because a range of well-compressed chunks inflates to far
 * more than the range.
 */
const WRITE_BYTES = 8 * 1024 * 1024;

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

/** A stored chunk and every volume chunk index it fills (equal chunks are stored once). */
interface StoredChunk {
  location: ChunkLocation;
  indexes: number[];
}

/**
 * Writes every chunk the manifest names into the target; the chunks it does not name are zeros,
 * which a new (thin) volume already reads. Every chunk is checked after decryption against its id,
 * and a chunk whose size does not fit its place is refused: a failure names the object and the
 * chunk, and the caller discards what was written.
 */
export async function restoreCloudsnap(request: RestoreRequest): Promise<RestoreProgress> {
  const { bucket, keys, manifest } = request;
  const stored = new Map<string, StoredChunk>();
  for (const [index, location] of manifest.chunks) {
    const found = stored.get(placeOf(location));
    if (found === undefined) stored.set(placeOf(location), { location, indexes: [index] });
    else found.indexes.push(index);
  }
  const progress: RestoreProgress = {
    restoredBytes: 0,
    totalBytes: 0,
    chunks: 0,
    totalChunks: manifest.chunks.size,
    requests: 0,
  };
  for (const index of manifest.chunks.keys()) progress.totalBytes += spanOf(manifest, index);
  await eachConcurrently(planPackReads(stored.values()), FETCH_CONCURRENCY, async (read) => {
    const chunks = await readPack(bucket, manifest.volumeId, read);
    progress.requests++;
    const writes = new CoalescedWrites(request.write);
    // Upload workers interleave a pack's chunks; in volume order, neighbours join into one write.
    chunks.sort((a, b) => a.chunk.indexes[0]! - b.chunk.indexes[0]!);
    for (const { chunk, sealed, where } of chunks) {
      const plaintext = await decodeChunk(chunk.location.id, sealed, keys, where);
      for (const index of chunk.indexes) {
        if (plaintext.length > spanOf(manifest, index)) {
          throw new Error(
            `chunk ${chunk.location.id} in ${where} holds ${plaintext.length} bytes, more than chunk ${index} of the volume`,
          );
        }
        await writes.add(index * manifest.chunkBytes, plaintext);
        progress.restoredBytes += plaintext.length;
        progress.chunks++;
      }
    }
    await writes.flush();
    request.onProgress?.(progress);
  });
  return progress;
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
