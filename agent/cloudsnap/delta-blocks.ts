import type { ByteRange } from "../block-device.js";

/**
 * A delta stores a chunk as the blocks of it that differ from a full base chunk. Blocks are the
 * store's 4 KiB: the least a write changes, so a database's 8 KiB page costs two blocks, not a
 * 1 MiB chunk.
 */
export const DELTA_BLOCK_BYTES = 4096;
/**
 * Which blocks of a chunk a delta holds: bit b (byte b >> 3, most significant bit first) for the
 * block at b × DELTA_BLOCK_BYTES in the chunk. 32 bytes for a 1 MiB chunk.
 */
export type BlockBitmap = Buffer;

export const bitmapBytes = (chunkBytes: number) => Math.ceil(chunkBytes / DELTA_BLOCK_BYTES / 8);

const has = (bitmap: BlockBitmap, block: number) => (bitmap[block >> 3]! & (0x80 >> (block & 7))) !== 0;

/** The blocks of the chunk at [chunkOffset, chunkOffset + chunkLength) that `runs` overlap. */
export function touchedBlocks(
  runs: readonly ByteRange[],
  chunkOffset: number,
  chunkLength: number,
  chunkBytes: number,
): BlockBitmap {
  const bitmap = Buffer.alloc(bitmapBytes(chunkBytes));
  for (const run of runs) {
    const start = Math.max(run.offset, chunkOffset) - chunkOffset;
    const end = Math.min(run.offset + run.length, chunkOffset + chunkLength) - chunkOffset;
    if (end <= start) continue;
    for (let block = Math.floor(start / DELTA_BLOCK_BYTES); block * DELTA_BLOCK_BYTES < end; block++) {
      bitmap[block >> 3]! |= 0x80 >> (block & 7);
    }
  }
  return bitmap;
}

/** The blocks a bitmap holds, in order. */
export function blocksOf(bitmap: BlockBitmap): number[] {
  const blocks: number[] = [];
  for (let block = 0; block < bitmap.length * 8; block++) if (has(bitmap, block)) blocks.push(block);
  return blocks;
}

/** The blocks of `plaintext` that `bitmap` names, one after the other: a delta's body. */
export function extractBlocks(plaintext: Buffer, bitmap: BlockBitmap): Buffer {
  return Buffer.concat(blocksOf(bitmap).map((block) => blockOf(plaintext, block)));
}

/**
 * The chunk rebuilt from its base's plaintext and a delta's body, or why they do not fit: a block
 * past the base's end, or a body of another length than the blocks it should hold.
 */
export function applyBlocks(base: Buffer, bitmap: BlockBitmap, body: Buffer): Buffer | string {
  const chunk = Buffer.from(base);
  let at = 0;
  for (const block of blocksOf(bitmap)) {
    const target = blockOf(chunk, block);
    if (target.length === 0) return `names block ${block}, past the base's ${base.length} bytes`;
    if (at + target.length > body.length) return `holds ${body.length} bytes, fewer than its blocks`;
    at += body.copy(target, 0, at, at + target.length);
  }
  if (at !== body.length) return `holds ${body.length} bytes, more than its blocks' ${at}`;
  return chunk;
}

const blockOf = (chunk: Buffer, block: number) =>
  chunk.subarray(block * DELTA_BLOCK_BYTES, (block + 1) * DELTA_BLOCK_BYTES);
