import { promisify } from "node:util";
import { deflateRaw, inflateRaw } from "node:zlib";
import { z } from "zod";
import { isPackId } from "../../core/cloud/cloudsnap-layout.js";
import type { VolumeKeys } from "./keys.js";
import { seal, unseal } from "./sealing.js";

const deflate = promisify(deflateRaw);
const inflate = promisify(inflateRaw);

/** Where one chunk's sealed bytes are. */
export interface ChunkLocation {
  /** The chunk's id (hex HMAC of its plaintext). */
  id: string;
  pack: string;
  offset: number;
  length: number;
}

export const ManifestHeader = z.strictObject({
  format: z.literal(1),
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
  /** Chunk index (offset / chunkBytes) → location, in ascending index order. */
  chunks: Map<number, ChunkLocation>;
}

/**
 * On the wire the manifest is binary, deflated, then sealed with the manifest key and bound to its
 * cloudsnap (associated data), so a manifest cannot be altered, nor served as another cloudsnap's:
 *
 *   header length (u32) | header JSON (with the pack ids) | entry count (u32) |
 *   entries: chunk index (u32) | pack (u32, into the header's list) | offset (u32) | length (u32) | id (32)
 *
 * 48 bytes a chunk: a fully written 1 TiB volume in 1 MiB chunks has a 48 MiB manifest before
 * deflate, which packs of one volume's chunks shrink little (the ids are random).
 */
const ENTRY_BYTES = 4 * 4 + 32;
const WireHeader = ManifestHeader.extend({ packs: z.array(z.string().refine(isPackId, "a pack id")) });

const associatedData = (volumeId: string, cloudsnapId: string) =>
  Buffer.from(`strata cloudsnap manifest ${volumeId} ${cloudsnapId}`);

export async function sealManifest(manifest: Manifest, keys: VolumeKeys): Promise<Buffer> {
  const packs: string[] = [];
  const packRefs = new Map<string, number>();
  const entries = Buffer.alloc(manifest.chunks.size * ENTRY_BYTES);
  let at = 0;
  for (const [index, location] of [...manifest.chunks].sort(([a], [b]) => a - b)) {
    let ref = packRefs.get(location.pack);
    if (ref === undefined) {
      ref = packs.push(location.pack) - 1;
      packRefs.set(location.pack, ref);
    }
    at = entries.writeUInt32BE(index, at);
    at = entries.writeUInt32BE(ref, at);
    at = entries.writeUInt32BE(location.offset, at);
    at = entries.writeUInt32BE(location.length, at);
    at += Buffer.from(location.id, "hex").copy(entries, at);
  }
  const { chunks: _, ...header } = manifest;
  const headerJson = Buffer.from(JSON.stringify({ ...header, packs }));
  const lengths = Buffer.alloc(4);
  lengths.writeUInt32BE(headerJson.length);
  const count = Buffer.alloc(4);
  count.writeUInt32BE(manifest.chunks.size);
  const plain = await deflate(Buffer.concat([lengths, headerJson, count, entries]));
  return seal(plain, keys.manifestKey, associatedData(manifest.volumeId, manifest.cloudsnapId));
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
  if (bytes.length !== at + count * ENTRY_BYTES) throw refuse(`is truncated (${count} entries announced)`);
  const chunkCount = Math.ceil(header.sizeBytes / header.chunkBytes);
  const chunks = new Map<number, ChunkLocation>();
  let previous = -1;
  for (let entry = 0; entry < count; entry++, at += ENTRY_BYTES) {
    const index = bytes.readUInt32BE(at);
    const pack = packs[bytes.readUInt32BE(at + 4)];
    if (index <= previous || index >= chunkCount || pack === undefined)
      throw refuse(`has an invalid entry ${entry} (chunk ${index})`);
    previous = index;
    chunks.set(index, {
      pack,
      offset: bytes.readUInt32BE(at + 8),
      length: bytes.readUInt32BE(at + 12),
      id: bytes.subarray(at + 16, at + ENTRY_BYTES).toString("hex"),
    });
  }
  return { ...header, chunks };
}
