import type { CloudsnapBucket } from "../../core/cloud/cloudsnap-bucket.js";
import { manifestObject, manifestsPrefix, packsPrefix } from "../../core/cloud/cloudsnap-layout.js";
import { eachConcurrently } from "../../core/concurrency.js";
import type { HeldLease } from "../../core/state/leases.js";
import type { VolumeKeys } from "./keys.js";
import { type ChunkLocation, type Manifest, openManifest, sealManifest } from "./manifest.js";
import { placeOf, planPackReads, readPack } from "./pack-reads.js";
import { DEFAULT_PACK_OPTIONS, PackWriter } from "./pack-writer.js";

/**
 * A pack whose chunks still in use fill less than this share of it is repacked: its live chunks
 * are copied into new packs (sealed as they are: no key is needed to move them) and it is deleted.
 * Half keeps the space a volume's packs take under twice what its cloudsnaps need, while a pack is
 * rewritten only after half of it became garbage.
 */
export const REPACK_BELOW = 0.5;
/** Ranged reads of packs being repacked at once. */
const REPACK_READS = 4;

export interface GarbageCollected {
  packsDeleted: number;
  packsRepacked: number;
  manifestsRewritten: number;
  manifestsDeleted: number;
  /** Bytes of packs deleted, less the bytes of the packs the live chunks moved to. */
  bytesFreed: number;
}

export interface CollectGarbage {
  bucket: CloudsnapBucket;
  volumeId: string;
  /** The cloudsnaps the catalog lists: their manifests are what is live. */
  cloudsnapIds: readonly string[];
  /** Undefined when the volume has no cloudsnap left (then everything of it is garbage). */
  keys: VolumeKeys | undefined;
  lease: HeldLease;
  repackBelow?: number;
}

/**
 * Garbage collection of one volume's objects. What is live is what the listed cloudsnaps'
 * manifests name: chunks, deltas and the deltas' bases; the rest goes: packs nothing names,
 * manifests no catalog lists (left by an upload or a delete cut short), and packs mostly dead are
 * repacked. Memory holds the places of the volume's distinct live chunks (about 100 bytes per MiB
 * of distinct data), read one manifest at a time: it grows with the largest volume, not with the
 * number of cloudsnaps or volumes.
 *
 * Crash-safe in every order: new packs are complete before a manifest names them, each manifest
 * is replaced whole, and a pack is deleted only once no manifest names it. Runs under the
 * volume's lease, so no upload adds packs or reuses chunks meanwhile.
 */
export async function collectGarbage(request: CollectGarbage): Promise<GarbageCollected> {
  const { bucket, volumeId, keys, lease } = request;
  const manifests = async function* () {
    if (keys === undefined) return;
    for (const cloudsnapId of request.cloudsnapIds) {
      const key = manifestObject(volumeId, cloudsnapId);
      yield openManifest(await bucket.get(key), { volumeId, cloudsnapId }, keys, bucket.where(key));
    }
  };
  const live = new Map<string, Map<number, ChunkLocation>>();
  const keep = (location: ChunkLocation) => {
    const places = live.get(location.pack) ?? new Map<number, ChunkLocation>();
    places.set(location.offset, location);
    live.set(location.pack, places);
  };
  for await (const manifest of manifests()) {
    for (const entry of manifest.chunks.values()) {
      keep(entry);
      // A delta is worth nothing without its base, wherever that is.
      if (entry.delta !== undefined) keep(entry.delta.base);
    }
  }

  const prefix = packsPrefix(volumeId);
  const dead: { key: string; size: number }[] = [];
  const sparse: { key: string; size: number; chunks: ChunkLocation[] }[] = [];
  for await (const object of bucket.list(prefix)) {
    const places = live.get(object.key.slice(prefix.length));
    if (places === undefined) {
      dead.push(object);
      continue;
    }
    const liveBytes = [...places.values()].reduce((sum, location) => sum + location.length, 0);
    if (liveBytes < (request.repackBelow ?? REPACK_BELOW) * object.size) {
      sparse.push({ ...object, chunks: [...places.values()] });
    }
  }
  const moved = await repack(bucket, volumeId, sparse);
  let rewritten = 0;
  if (moved.size > 0) {
    await lease.confirm();
    for await (const manifest of manifests()) {
      if (await rewriteManifest(bucket, manifest, moved, keys!)) rewritten++;
    }
  }

  const orphanManifests: string[] = [];
  const listed = new Set(request.cloudsnapIds.map((id) => manifestObject(volumeId, id)));
  for await (const { key } of bucket.list(manifestsPrefix(volumeId))) {
    if (!listed.has(key)) orphanManifests.push(key);
  }
  await lease.confirm();
  await bucket.delete([...orphanManifests, ...dead.map(({ key }) => key), ...sparse.map(({ key }) => key)]);
  const deletedBytes = [...dead, ...sparse].reduce((sum, { size }) => sum + size, 0);
  const movedBytes = [...moved.values()].reduce((sum, location) => sum + location.length, 0);
  return {
    packsDeleted: dead.length,
    packsRepacked: sparse.length,
    manifestsRewritten: rewritten,
    manifestsDeleted: orphanManifests.length,
    bytesFreed: deletedBytes - movedBytes,
  };
}

/** Copies the live chunks of `packs` into new packs: old place → new location. */
async function repack(
  bucket: CloudsnapBucket,
  volumeId: string,
  packs: readonly { chunks: ChunkLocation[] }[],
): Promise<Map<string, ChunkLocation>> {
  const moved = new Map<string, ChunkLocation>();
  if (packs.length === 0) return moved;
  const writer = new PackWriter(bucket, volumeId, DEFAULT_PACK_OPTIONS);
  const reads = planPackReads(packs.flatMap(({ chunks }) => chunks.map((location) => ({ location }))));
  await eachConcurrently(reads, REPACK_READS, async (read) => {
    await writer.ready();
    for (const { chunk, sealed } of await readPack(bucket, volumeId, read)) {
      // A copy: the pack being built must not hold on to the whole ranged read.
      moved.set(placeOf(chunk.location), writer.add(chunk.location.id, Buffer.from(sealed)));
    }
  });
  await writer.finish();
  return moved;
}

/**
 * Points a manifest's moved chunks and bases at their new places and puts it back; false if none
 * moved.
 */
async function rewriteManifest(
  bucket: CloudsnapBucket,
  manifest: Manifest,
  moved: ReadonlyMap<string, ChunkLocation>,
  keys: VolumeKeys,
): Promise<boolean> {
  let changed = false;
  for (const [index, entry] of manifest.chunks) {
    const to = moved.get(placeOf(entry)) ?? entry;
    const baseTo = entry.delta === undefined ? undefined : moved.get(placeOf(entry.delta.base));
    if (to === entry && baseTo === undefined) continue;
    const { id, pack, offset, length } = to;
    const delta =
      entry.delta === undefined ? undefined : { ...entry.delta, base: baseTo ?? entry.delta.base };
    manifest.chunks.set(
      index,
      delta === undefined ? { id, pack, offset, length } : { id, pack, offset, length, delta },
    );
    changed = true;
  }
  if (changed) {
    await bucket.put(
      manifestObject(manifest.volumeId, manifest.cloudsnapId),
      await sealManifest(manifest, keys),
    );
  }
  return changed;
}
