import type { CloudsnapBucket } from "../../core/cloud/cloudsnap-bucket.js";
import { eachConcurrently } from "../../core/concurrency.js";
import { decodeChunk } from "./chunk-codec.js";
import type { VolumeKeys } from "./keys.js";
import type { ChunkLocation, Manifest } from "./manifest.js";
import { placeOf, planPackReads, readPack } from "./pack-reads.js";

/** Ranges fetched, decrypted and written at once. */
const FETCH_CONCURRENCY = 4;

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
    for (const { chunk, sealed, where } of chunks) {
      const plaintext = await decodeChunk(chunk.location.id, sealed, keys, where);
      for (const index of chunk.indexes) {
        if (plaintext.length > spanOf(manifest, index)) {
          throw new Error(
            `chunk ${chunk.location.id} in ${where} holds ${plaintext.length} bytes, more than chunk ${index} of the volume`,
          );
        }
        await request.write(index * manifest.chunkBytes, plaintext);
        progress.restoredBytes += plaintext.length;
        progress.chunks++;
      }
    }
    request.onProgress?.(progress);
  });
  return progress;
}

/** How many bytes of the volume chunk `index` covers (the last one may be short). */
function spanOf(manifest: Manifest, index: number): number {
  return Math.min(manifest.chunkBytes, manifest.sizeBytes - index * manifest.chunkBytes);
}
