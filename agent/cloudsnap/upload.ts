import type { CloudsnapBucket } from "../../core/cloud/cloudsnap-bucket.js";
import { manifestObject } from "../../core/cloud/cloudsnap-layout.js";
import type { ByteRange } from "../block-device.js";
import { mergeRuns } from "../replication/coordinator/rebuild.js";
import { chunkId, encodeChunk } from "./chunk-codec.js";
import { touchedBlocks } from "./delta-blocks.js";
import { encodeDelta } from "./delta-codec.js";
import { planDelta } from "./delta-plan.js";
import type { VolumeKeys } from "./keys.js";
import { type ChunkEntry, type Manifest, sealManifest } from "./manifest.js";
import { DEFAULT_PACK_OPTIONS, PackWriter, type PackWriterOptions } from "./pack-writer.js";

/**
 * Chunks are fixed 1 MiB pieces of the volume, aligned to its 4 KiB blocks (block devices do not
 * shift data, so content-defined boundaries would find nothing more to dedupe). 1 MiB keeps a
 * manifest at 48 bytes per MiB of data and the requests per GiB low; an incremental stores a chunk
 * that scattered writes changed as a delta of its 4 KiB blocks (delta-blocks.ts), so a 4 KiB write
 * does not make it upload a whole chunk (docs/benchmarks.md measures both).
 */
export const CHUNK_BYTES = 1024 * 1024;
/** Chunks read, hashed and sealed at once: keeps the source, the CPU and the puts busy together. */
const CHUNK_CONCURRENCY = 4;

/** What a cloudsnap reads: a frozen snapshot of the volume. */
export interface UploadSource {
  sizeBytes: number;
  /**
   * The byte ranges to read: where the snapshot holds data, or, for an incremental, where it may
   * differ from the base cloudsnap's snapshot (blocks written or zeroed since).
   */
  runs: readonly ByteRange[];
  read(offset: number, length: number): Promise<Buffer>;
}

export interface UploadProgress {
  /** Bytes read of the ranges to read. */
  scannedBytes: number;
  totalBytes: number;
  chunks: number;
  newChunks: number;
  /** Sealed bytes in packs put so far. */
  uploadedBytes: number;
}

export interface UploadRequest {
  bucket: CloudsnapBucket;
  keys: VolumeKeys;
  volumeId: string;
  cloudsnapId: string;
  createdAt: Date;
  source: UploadSource;
  /**
   * The volume's latest cloudsnap. Every chunk it names is reused, not uploaded again (dedupe); when
   * `incremental`, chunks outside the source's runs are unchanged and taken from it as they are, and
   * a changed chunk it holds is stored as a delta on its full chunk while the delta stays small.
   */
  base?: { manifest: Manifest; incremental: boolean };
  packs?: PackWriterOptions;
  onProgress?: (progress: UploadProgress) => void;
}

export interface UploadResult {
  manifest: Manifest;
  progress: UploadProgress;
  /** Bytes of the volume that are not zeros. */
  dataBytes: number;
}

/**
 * Uploads one cloudsnap: reads the chunks the source's runs touch, skips the all-zero ones, seals
 * the new ones into packs, then puts the manifest naming every chunk of the volume. Nothing names
 * the cloudsnap until the caller adds it to the catalog, after this resolves.
 */
export async function uploadCloudsnap(request: UploadRequest): Promise<UploadResult> {
  const { bucket, keys, source, base } = request;
  const writer = new PackWriter(bucket, request.volumeId, request.packs ?? DEFAULT_PACK_OPTIONS);
  const incremental = base?.incremental === true;
  const chunks = new Map<number, ChunkEntry>(incremental ? base.manifest.chunks : []);
  const known = new Map<string, ChunkEntry | Promise<ChunkEntry>>();
  for (const entry of base?.manifest.chunks.values() ?? []) {
    known.set(entry.id, entry);
    // A chunk written back to what its base held is that base again.
    if (entry.delta !== undefined && !known.has(entry.delta.base.id))
      known.set(entry.delta.base.id, entry.delta.base);
  }
  // What a changed chunk's delta builds on: the previous cloudsnap's entry at its index. None when
  // the volume was resized, as a chunk of another length than its base cannot be a delta on it.
  const previousEntries =
    incremental && base.manifest.sizeBytes === source.sizeBytes && base.manifest.chunkBytes === CHUNK_BYTES
      ? base.manifest.chunks
      : undefined;

  const runs = mergeRuns(source.runs);
  const progress: UploadProgress = {
    scannedBytes: 0,
    totalBytes: chunkSpanBytes(runs, source.sizeBytes),
    chunks: 0,
    newChunks: 0,
    uploadedBytes: 0,
  };
  const zeros = Buffer.alloc(CHUNK_BYTES);
  const touched = touchedChunks(runs);
  const worker = async () => {
    for (let next = touched.next(); next.done !== true; next = touched.next()) {
      const { index, runs: chunkRuns } = next.value;
      await writer.ready();
      const offset = index * CHUNK_BYTES;
      const data = await source.read(offset, Math.min(CHUNK_BYTES, source.sizeBytes - offset));
      progress.scannedBytes += data.length;
      if (data.equals(zeros.subarray(0, data.length))) {
        chunks.delete(index);
      } else {
        const id = chunkId(data, keys);
        let location = known.get(id);
        if (location === undefined) {
          const previous = previousEntries?.get(index);
          const delta =
            previous === undefined
              ? undefined
              : planDelta(previous, touchedBlocks(chunkRuns, offset, data.length, CHUNK_BYTES), data.length);
          location =
            delta === undefined
              ? encodeChunk(id, data, keys).then((encoded) => writer.add(id, encoded.sealed))
              : encodeDelta({ id, baseId: delta.base.id, blocks: delta.blocks }, data, keys).then(
                  (sealed): ChunkEntry => ({ ...writer.add(id, sealed), delta }),
                );
          known.set(id, location);
          progress.newChunks++;
        }
        chunks.set(index, await location);
      }
      progress.uploadedBytes = writer.uploadedBytes;
      request.onProgress?.(progress);
    }
  };
  await Promise.all(Array.from({ length: CHUNK_CONCURRENCY }, worker));
  await writer.finish();

  const manifest: Manifest = {
    format: 2,
    volumeId: request.volumeId,
    cloudsnapId: request.cloudsnapId,
    sizeBytes: source.sizeBytes,
    chunkBytes: CHUNK_BYTES,
    createdAt: request.createdAt.toISOString(),
    // In the order the workers finished: sealManifest writes the entries sorted.
    chunks,
  };
  await bucket.put(manifestObject(request.volumeId, request.cloudsnapId), await sealManifest(manifest, keys));
  progress.chunks = manifest.chunks.size;
  progress.uploadedBytes = writer.uploadedBytes;
  request.onProgress?.(progress);
  let dataBytes = 0;
  for (const index of manifest.chunks.keys())
    dataBytes += Math.min(CHUNK_BYTES, source.sizeBytes - index * CHUNK_BYTES);
  return { manifest, progress, dataBytes };
}

/**
 * The chunks that merged, sorted runs touch, each once with the runs that touch it, lazily (a volume
 * may have millions).
 */
function* touchedChunks(runs: readonly ByteRange[]): Generator<{ index: number; runs: ByteRange[] }> {
  let current: { index: number; runs: ByteRange[] } | undefined;
  for (const run of runs) {
    const first = Math.floor(run.offset / CHUNK_BYTES);
    const end = Math.floor((run.offset + run.length - 1) / CHUNK_BYTES);
    for (let index = first; index <= end; index++) {
      if (current !== undefined && current.index !== index) {
        yield current;
        current = undefined;
      }
      current ??= { index, runs: [] };
      current.runs.push(run);
    }
  }
  if (current !== undefined) yield current;
}

function chunkSpanBytes(runs: readonly ByteRange[], sizeBytes: number): number {
  let total = 0;
  for (const { index } of touchedChunks(runs))
    total += Math.min(CHUNK_BYTES, sizeBytes - index * CHUNK_BYTES);
  return total;
}
