import { holdsChunk, openStored, sealStored } from "./chunk-codec.js";
import { applyBlocks, type BlockBitmap, extractBlocks } from "./delta-blocks.js";
import type { VolumeKeys } from "./keys.js";

/**
 * A chunk stored as a delta: the blocks that differ from its base (delta-blocks.ts), concatenated,
 * sealed as a chunk is (chunk-codec.ts: deflate probe, AES-256-GCM). The associated data is the
 * chunk's id, its base's id and the bitmap of the blocks, so a delta cannot be passed off as another
 * chunk's, applied to another base, or read with other blocks than it was made of; the chunk it
 * rebuilds is checked against its id as any chunk is.
 */
const binding = (id: string, baseId: string, blocks: BlockBitmap) =>
  Buffer.concat([Buffer.from(id, "hex"), Buffer.from(baseId, "hex"), blocks]);

/** What a delta is made of, as the manifest says it. */
export interface DeltaOf {
  /** The id of the chunk the delta rebuilds. */
  id: string;
  baseId: string;
  blocks: BlockBitmap;
}

/** Seals the blocks of chunk `plaintext` that `delta.blocks` names. */
export function encodeDelta(delta: DeltaOf, plaintext: Buffer, keys: VolumeKeys): Promise<Buffer> {
  return sealStored(
    extractBlocks(plaintext, delta.blocks),
    keys,
    binding(delta.id, delta.baseId, delta.blocks),
  );
}

/**
 * The chunk a sealed delta rebuilds on its base's plaintext (already checked against its id),
 * checked against the chunk's id. Refusals name the delta, its base and `where` (the object
 * holding the delta).
 */
export async function decodeDelta(
  delta: DeltaOf,
  sealed: Buffer,
  base: Buffer,
  keys: VolumeKeys,
  where: string,
): Promise<Buffer> {
  const refuse = (why: string) =>
    new Error(`delta of chunk ${delta.id} on base ${delta.baseId} in ${where} ${why}`);
  const body = await openStored(
    sealed,
    keys,
    binding(delta.id, delta.baseId, delta.blocks),
    refuse,
    "the key is wrong, the object was altered, or it is not this chunk's delta on this base",
  );
  const chunk = applyBlocks(base, delta.blocks, body);
  if (typeof chunk === "string") throw refuse(chunk);
  if (!holdsChunk(delta.id, chunk, keys)) throw refuse("rebuilds other data than the chunk's id says");
  return chunk;
}
