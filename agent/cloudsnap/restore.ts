import type { CloudsnapBucket } from "./bucket.js";
import { decodeChunk } from "./chunk-codec.js";
import type { VolumeKeys } from "./keys.js";
import { packObject } from "./layout.js";
import type { ChunkLocation, Manifest } from "./manifest.js";

/**
 * One ranged GET of a pack covers neighbouring chunks up to this much: a full cloudsnap's packs
 * come back in a few large reads instead of one request per chunk, while the memory a restore holds
 * stays at concurrency × this. The 64 KiB over 16 MiB is room for the sealing: a 1 MiB chunk that
 * does not compress is 30 bytes longer sealed, and at 16 MiB exactly only 15 of them fit, so each
 * 32 MiB pack of such chunks took three requests instead of two.
 */
const FETCH_BYTES = 16 * 1024 * 1024 + 64 * 1024;
/** Unneeded bytes between two needed chunks that are still read in one request rather than two. */
const FETCH_GAP_BYTES = 256 * 1024;
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

/** A ranged read of one pack and the chunks in it, each with every volume chunk index it fills. */
interface Fetch {
  pack: string;
  offset: number;
  length: number;
  chunks: { location: ChunkLocation; indexes: number[] }[];
}

/**
 * Writes every chunk the manifest names into the target; the chunks it does not name are zeros,
 * which a new (thin) volume already reads. Every chunk is checked after decryption against its id,
 * and a chunk whose size does not fit its place is refused: a failure names the object and the
 * chunk, and the caller discards what was written.
 */
export async function restoreCloudsnap(request: RestoreRequest): Promise<RestoreProgress> {
  const { bucket, keys, manifest } = request;
  const fetches = planFetches(manifest);
  const progress: RestoreProgress = {
    restoredBytes: 0,
    totalBytes: 0,
    chunks: 0,
    totalChunks: manifest.chunks.size,
    requests: 0,
  };
  for (const index of manifest.chunks.keys()) progress.totalBytes += spanOf(manifest, index);
  let next = 0;
  const worker = async () => {
    while (next < fetches.length) {
      const fetch = fetches[next++]!;
      const key = packObject(manifest.volumeId, fetch.pack);
      const bytes = await bucket.get(key, { offset: fetch.offset, length: fetch.length });
      progress.requests++;
      for (const { location, indexes } of fetch.chunks) {
        const start = location.offset - fetch.offset;
        const sealed = bytes.subarray(start, start + location.length);
        const plaintext = await decodeChunk(location.id, sealed, keys, bucket.where(key));
        for (const index of indexes) {
          if (plaintext.length > spanOf(manifest, index)) {
            throw new Error(
              `chunk ${location.id} in ${bucket.where(key)} holds ${plaintext.length} bytes, more than chunk ${index} of the volume`,
            );
          }
          await request.write(index * manifest.chunkBytes, plaintext);
          progress.restoredBytes += plaintext.length;
          progress.chunks++;
        }
      }
      request.onProgress?.(progress);
    }
  };
  await Promise.all(Array.from({ length: FETCH_CONCURRENCY }, worker));
  return progress;
}

/** How many bytes of the volume chunk `index` covers (the last one may be short). */
function spanOf(manifest: Manifest, index: number): number {
  return Math.min(manifest.chunkBytes, manifest.sizeBytes - index * manifest.chunkBytes);
}

/** Groups the manifest's chunks by pack, in pack order, into ranged reads of neighbouring chunks. */
export function planFetches(manifest: Manifest): Fetch[] {
  const byLocation = new Map<string, { location: ChunkLocation; indexes: number[] }>();
  for (const [index, location] of manifest.chunks) {
    const key = `${location.pack}:${location.offset}`;
    const found = byLocation.get(key);
    if (found === undefined) byLocation.set(key, { location, indexes: [index] });
    else found.indexes.push(index);
  }
  const byPack = new Map<string, { location: ChunkLocation; indexes: number[] }[]>();
  for (const chunk of byLocation.values()) {
    const list = byPack.get(chunk.location.pack) ?? [];
    list.push(chunk);
    byPack.set(chunk.location.pack, list);
  }
  const fetches: Fetch[] = [];
  for (const [pack, chunks] of byPack) {
    chunks.sort((a, b) => a.location.offset - b.location.offset);
    let current: Fetch | undefined;
    for (const chunk of chunks) {
      const { offset, length } = chunk.location;
      const end = offset + length;
      if (
        current !== undefined &&
        offset - (current.offset + current.length) <= FETCH_GAP_BYTES &&
        end - current.offset <= FETCH_BYTES
      ) {
        current.length = end - current.offset;
        current.chunks.push(chunk);
      } else {
        current = { pack, offset, length, chunks: [chunk] };
        fetches.push(current);
      }
    }
  }
  return fetches;
}
