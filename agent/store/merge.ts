import { BlockCopier, COPY_RUN_BLOCKS } from "./block-copier.js";
import { BlockState } from "./block-state-map.js";
import { viewHasData } from "./chain-view.js";
import type { LayerChain } from "./layer-chain.js";
import { entryFor, positionOf } from "./layer-index.js";
import type { RangeLocks } from "./range-locks.js";
import { ALREADY_ACCOUNTED } from "./space.js";

/**
 * First half of deleting the snapshot layer P at `parentPosition`: copies into its child C (the
 * next layer up, possibly the live head) every block P defines and C does not, data or zeros.
 * Zeros over a view with no data below P are dropped: without P the block reads as zeros anyway.
 *
 * Why a crash (or an error) at any point leaves a correct chain: each copy preserves every view.
 * For a block C does not define, C's view and that of every layer above it that does not define
 * it either come from P; after the copy they come from C, with the same bytes. P is untouched, so
 * its own view and those below it are unchanged. The caller flushes C before it rewrites
 * replica.json without P (the commit point) and deletes P's files only after that.
 *
 * Runs beside live I/O: each chunk is copied under a range lock, and C's state is checked under
 * that lock, so a write to the head is never overwritten by an older copy. Returns how many data
 * blocks moved into C (the pool already counts them, as P's).
 */
export async function mergeIntoChild(
  chain: LayerChain,
  parentPosition: number,
  locks: RangeLocks,
): Promise<number> {
  const { index, layers } = chain;
  const parent = chain.layerAt(parentPosition);
  const child = chain.layerAt(parentPosition + 1);
  const childPosition = parentPosition + 1;
  const copier = new BlockCopier(child, ALREADY_ACCOUNTED);
  let chunkStart = parent.map.nextDefined(0);
  while (chunkStart >= 0) {
    const chunkEnd = chunkStart + COPY_RUN_BLOCKS;
    const range = await locks.acquire(chunkStart, chunkEnd - 1);
    try {
      const copied: number[] = [];
      for (
        let block = chunkStart;
        block >= 0 && block < chunkEnd;
        block = parent.map.nextDefined(block + 1)
      ) {
        if (child.map.get(block) !== BlockState.absent) continue;
        if (parent.map.get(block) === BlockState.data) {
          await copier.add(parent, block);
          copied.push(block);
        } else if (viewHasData(layers, parentPosition - 1, block)) {
          child.map.set(block, BlockState.zero);
          copied.push(block);
        }
      }
      await copier.finish();
      // The index keeps naming the top-most defining layer, which is now C where it was P.
      for (const block of copied) {
        if (positionOf(index.get(block)) === parentPosition) {
          index.set(block, entryFor(childPosition, child.map.get(block)));
        }
      }
    } finally {
      locks.release(range);
    }
    chunkStart = parent.map.nextDefined(chunkEnd);
  }
  return copier.copiedBlocks;
}
