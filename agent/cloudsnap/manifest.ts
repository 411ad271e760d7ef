import { promisify } from "node:util";
import { deflateRaw, inflateRaw } from "node:zlib";
import { z } from "zod";
import { isPackId } from "../../core/cloud/cloudsnap-layout.js";
import { type BlockBitmap, bitmapBytes } from "./delta-blocks.js";
import type { VolumeKeys } from "./keys.js";
import { seal, unseal } from "./sealing.js";

const deflate = promisify(deflateRaw);
const inflate = promisify(inflateRaw);

/** Where one stored object (a full chunk or a delta) is, and the id of the chunk it holds. */
export interface ChunkLocation {
  /** The chunk's id (hex HMAC of its plaintext). */
  id: string;
  pack: string;
  offset: number;
  length: number;
}

/** A chunk stored as a delta (delta-codec.ts): the full chunk it applies to, and its blocks. */
export interface ChunkDelta {
  /** Always a full chunk: deltas are never applied to deltas. */
  base: ChunkLocation;
  blocks: BlockBitmap;
}

/** A manifest's entry: where the chunk is, and for a delta, what it applies to. */
export interface ChunkEntry extends ChunkLocation {
  delta?: ChunkDelta;
}

export const ManifestHeader = z.strictObject({
  /** What the wire layout was: 1 without deltas, 2 with (see sealManifest). */
  format: z.union([z.literal(1), z.literal(2)]),
  volumeId: z.string(),
  cloudsnapId: z.string(),
  sizeBytes: z.number().int().positive(),
  chunkBytes: z.number().int().positive(),
  createdAt: z.iso.datetime(),
});
export type ManifestHeader = z.infer<typeof ManifestHeader>;

/**
 * One cloudsnap: for every chunk of the volume that is not all zeros, where its sealed bytes are.
 * It names every chunk the cloudsnap needs, old or new, so it restores on its own; chunks it does
 * not name read as zeros.
 */
export interface Manifest extends ManifestHeader {
  /** Chunk index (offset / chunkBytes) → entry. */
  chunks: Map<number, ChunkEntry>;
}

/**
 * On the wire the manifest is binary, deflated, then sealed with the manifest key and bound to its
 * cloudsnap (associated data), so a manifest cannot be altered, nor served as another cloudsnap's.
 * Format 2:
 *
 *   header length (u32) | header JSON (with the pack ids) | entry count (u32) | entries, by index:
 *     chunk index (u32) | pack (u32) | offset (u32) | length (u32) | id (32)
 *     and when the pack's top bit is set (a delta; the other 31 bits index the header's packs):
 *     base pack (u32) | base offset (u32) | base length (u32) | base id (32) | blocks (32)
 *
 * 48 bytes a full chunk, 124 a delta (blocks: a bitmap of the chunk's 4 KiB blocks, delta-blocks.ts,
 * chunkBytes / 32 KiB bytes). A fully written 1 TiB volume in 1 MiB chunks has a 48 MiB manifest
 * before deflate, which packs of one volume's chunks shrink little (the ids are random). Format 1 is
 * format 2 without deltas (no top bit set): it is read as it is, and written again as format 2.
 */
const MANIFEST_FORMAT = 2;
const LOCATION_BYTES = 4 * 3 + 32;
const ENTRY_BYTES = 4 + LOCATION_BYTES;
const DELTA_FLAG = 0x8000_0000;
const WireHeader = ManifestHeader.extend({ packs: z.array(z.string().refine(isPackId, "a pack id")) });

const associatedData = (volumeId: string, cloudsnapId: string) =>
  Buffer.from(`strata cloudsnap manifest ${volumeId} ${cloudsnapId}`);

export async function sealManifest(manifest: Manifest, keys: VolumeKeys): Promise<Buffer> {
  const packs: string[] = [];
  const packRefs = new Map<string, number>();
  const refOf = (pack: string) => {
    let ref = packRefs.get(pack);
    if (ref === undefined) {
      ref = packs.push(pack) - 1;
      packRefs.set(pack, ref);
    }
    return ref;
  };
  const blocksBytes = bitmapBytes(manifest.chunkBytes);
  const deltaBytes = LOCATION_BYTES + blocksBytes;
  let deltas = 0;
  for (const entry of manifest.chunks.values()) if (entry.delta !== undefined) deltas++;
  // One buffer for all entries: a 1 TiB volume has a million of them.
  const entries = Buffer.alloc(manifest.chunks.size * ENTRY_BYTES + deltas * deltaBytes);
  let at = 0;
  for (const [index, entry] of [...manifest.chunks].sort(([a], [b]) => a - b)) {
    const { delta } = entry;
    at = entries.writeUInt32BE(index, at);
    at = writeLocation(entries, at, entry, refOf(entry.pack) | (delta === undefined ? 0 : DELTA_FLAG));
    if (delta === undefined) continue;
    if (delta.blocks.length !== blocksBytes) throw new Error(`chunk ${index} has a malformed delta bitmap`);
    at = writeLocation(entries, at, delta.base, refOf(delta.base.pack));
    at += delta.blocks.copy(entries, at);
  }
  const { chunks: _, ...header } = manifest;
  const headerJson = Buffer.from(JSON.stringify({ ...header, format: MANIFEST_FORMAT, packs }));
  const lengths = Buffer.alloc(4);
  lengths.writeUInt32BE(headerJson.length);
  const count = Buffer.alloc(4);
  count.writeUInt32BE(manifest.chunks.size);
  const plain = await deflate(Buffer.concat([lengths, headerJson, count, entries]));
  return seal(plain, keys.manifestKey, associatedData(manifest.volumeId, manifest.cloudsnapId));
}

function writeLocation(bytes: Buffer, at: number, location: ChunkLocation, packRef: number): number {
  at = bytes.writeUInt32BE(packRef >>> 0, at);
  at = bytes.writeUInt32BE(location.offset, at);
  at = bytes.writeUInt32BE(location.length, at);
  return at + Buffer.from(location.id, "hex").copy(bytes, at);
}

/**
 * The manifest of `cloudsnapId`, checked: it decrypts under the volume's key for that very
 * cloudsnap, and every entry is in range. Refusals name `where` (the object).
 */
export async function openManifest(
  sealed: Buffer,
  expected: { volumeId: string; cloudsnapId: string },
  keys: VolumeKeys,
  where: string,
): Promise<Manifest> {
  const refuse = (why: string) => new Error(`manifest ${where} ${why}`);
  const plain = unseal(sealed, keys.manifestKey, associatedData(expected.volumeId, expected.cloudsnapId));
  if (plain === undefined) throw refuse("does not decrypt: the key is wrong or the object was altered");
  const bytes = await inflate(plain);
  const headerLength = bytes.readUInt32BE(0);
  const parsed = WireHeader.safeParse(JSON.parse(bytes.subarray(4, 4 + headerLength).toString("utf8")));
  if (!parsed.success) throw refuse(`has a malformed header: ${parsed.error.issues[0]?.message}`);
  const { packs, ...header } = parsed.data;
  let at = 4 + headerLength;
  const count = bytes.readUInt32BE(at);
  at += 4;
  const chunkCount = Math.ceil(header.sizeBytes / header.chunkBytes);
  const blocksBytes = bitmapBytes(header.chunkBytes);
  const chunks = new Map<number, ChunkEntry>();
  let previous = -1;
  for (let entry = 0; entry < count; entry++) {
    if (at + ENTRY_BYTES > bytes.length) throw refuse(`is truncated (${count} entries announced)`);
    const index = bytes.readUInt32BE(at);
    const invalid = () => refuse(`has an invalid entry ${entry} (chunk ${index})`);
    const ref = bytes.readUInt32BE(at + 4);
    const isDelta = header.format >= 2 && (ref & DELTA_FLAG) !== 0;
    const location = readLocation(bytes, at + 4, packs, isDelta ? ref & ~DELTA_FLAG : ref);
    at += ENTRY_BYTES;
    if (index <= previous || index >= chunkCount || location === undefined) throw invalid();
    previous = index;
    if (!isDelta) {
      chunks.set(index, location);
      continue;
    }
    if (at + LOCATION_BYTES + blocksBytes > bytes.length)
      throw refuse(`is truncated (${count} entries announced)`);
    const base = readLocation(bytes, at, packs, bytes.readUInt32BE(at));
    if (base === undefined) throw invalid();
    at += LOCATION_BYTES;
    chunks.set(index, {
      ...location,
      delta: { base, blocks: Buffer.from(bytes.subarray(at, at + blocksBytes)) },
    });
    at += blocksBytes;
  }
  if (at !== bytes.length) throw refuse(`has ${bytes.length - at} bytes after its ${count} entries`);
  return { ...header, chunks };
}

/** The location at `at` (its pack ref `ref` read already), or undefined if the ref is out of range. */
function readLocation(
  bytes: Buffer,
  at: number,
  packs: readonly string[],
  ref: number,
): ChunkLocation | undefined {
  const pack = packs[ref];
  if (pack === undefined) return undefined;
  return {
    pack,
    offset: bytes.readUInt32BE(at + 4),
    length: bytes.readUInt32BE(at + 8),
    id: bytes.subarray(at + 12, at + LOCATION_BYTES).toString("hex"),
  };
}
