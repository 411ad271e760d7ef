import { type BlockBitmap, blocksOf, DELTA_BLOCK_BYTES } from "./delta-blocks.js";
import type { ChunkDelta, ChunkEntry } from "./manifest.js";

/**
 * A delta holding more than this share of its chunk is not made: the chunk is stored full instead
 * and becomes the base of the next deltas. A delta is cumulative (it holds every block changed
 * since its base, so a restore reads two objects, never a chain), which makes each incremental
 * upload its chunk's delta again, grown; past half the chunk, the base plus the delta a restore
 * reads are over 1.5 chunks, and a full chunk costs the upload at most twice the delta it replaces
 * while starting the growth over from nothing.
 */
export const DELTA_MAX_SHARE = 1 / 2;

/**
 * How a changed chunk is stored on an incremental, given the entry the previous cloudsnap had at its
 * index: as a delta on that entry's full chunk (its base if it is a delta itself, with the blocks of
 * both), or full (undefined) when the delta would pass DELTA_MAX_SHARE.
 */
export function planDelta(
  previous: ChunkEntry,
  touched: BlockBitmap,
  chunkLength: number,
): ChunkDelta | undefined {
  const blocks = Buffer.from(touched);
  if (previous.delta !== undefined) {
    if (previous.delta.blocks.length !== blocks.length) return undefined;
    for (let i = 0; i < blocks.length; i++) blocks[i]! |= previous.delta.blocks[i]!;
  }
  if (blocksOf(blocks).length * DELTA_BLOCK_BYTES > chunkLength * DELTA_MAX_SHARE) return undefined;
  const { id, pack, offset, length } = previous.delta?.base ?? previous;
  return { base: { id, pack, offset, length }, blocks };
}
