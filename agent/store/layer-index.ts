import { BlockState } from "./block-state-map.js";
import { BLOCKS_PER_PAGE, PageTable } from "./page-table.js";

/**
 * An index entry: the chain position (1 = oldest layer) of the top-most layer defining the block,
 * with ZERO_FLAG set when that layer defines it as zeros. 0 means no layer does: it reads as zeros.
 */
export type IndexEntry = number;

export const ZERO_FLAG = 0x8000;
const POSITION_MASK = 0x7fff;
/** Positions must fit beside the zero flag in a 16-bit entry. */
export const MAX_CHAIN_POSITION = POSITION_MASK;

export function entryFor(position: number, state: BlockState): IndexEntry {
  return state === BlockState.zero ? position | ZERO_FLAG : position;
}

export function positionOf(entry: IndexEntry): number {
  return entry & POSITION_MASK;
}

/** The position whose data file holds the block's bytes, or 0 when the block reads as zeros. */
export function dataPositionOf(entry: IndexEntry): number {
  return entry & ZERO_FLAG ? 0 : entry;
}

/** Anything that can tell, for a block of some view of the chain, where its bytes are. */
export interface BlockSourceLookup {
  dataPositionOf(block: number): number;
}

/**
 * For every block of the live view, which layer serves it: reads cost one lookup per block however
 * many snapshots exist. Derived from the layer maps at open and kept in step by every mutation;
 * never persisted. Pages (32 KiB each) exist only where some layer defines a block.
 */
export class LayerIndex implements BlockSourceLookup {
  private readonly pages = new PageTable<Uint16Array>();

  get(block: number): IndexEntry {
    const page = this.pages.get(Math.floor(block / BLOCKS_PER_PAGE));
    return page === undefined ? 0 : page[block % BLOCKS_PER_PAGE]!;
  }

  dataPositionOf(block: number): number {
    return dataPositionOf(this.get(block));
  }

  set(block: number, entry: IndexEntry): void {
    const pageNumber = Math.floor(block / BLOCKS_PER_PAGE);
    let page = this.pages.get(pageNumber);
    if (page === undefined) {
      if (entry === 0) return;
      page = new Uint16Array(BLOCKS_PER_PAGE);
      this.pages.set(pageNumber, page);
    }
    page[block % BLOCKS_PER_PAGE] = entry;
  }

  /** The first block at or after `from` that some layer defines, or -1. */
  nextDefined(from: number): number {
    let pageNumber = this.pages.nextPage(Math.floor(from / BLOCKS_PER_PAGE));
    let slot = pageNumber === Math.floor(from / BLOCKS_PER_PAGE) ? from % BLOCKS_PER_PAGE : 0;
    while (pageNumber >= 0) {
      const page = this.pages.get(pageNumber)!;
      for (; slot < BLOCKS_PER_PAGE; slot++) {
        if (page[slot] !== 0) return pageNumber * BLOCKS_PER_PAGE + slot;
      }
      pageNumber = this.pages.nextPage(pageNumber + 1);
      slot = 0;
    }
    return -1;
  }

  /** Replaces every non-zero entry by `rewrite(entry, block)` (used when chain positions shift). */
  rewriteEntries(rewrite: (entry: IndexEntry, block: number) => IndexEntry): void {
    for (
      let pageNumber = this.pages.nextPage(0);
      pageNumber >= 0;
      pageNumber = this.pages.nextPage(pageNumber + 1)
    ) {
      const page = this.pages.get(pageNumber)!;
      const firstBlock = pageNumber * BLOCKS_PER_PAGE;
      for (let slot = 0; slot < BLOCKS_PER_PAGE; slot++) {
        const entry = page[slot]!;
        if (entry !== 0) page[slot] = rewrite(entry, firstBlock + slot);
      }
    }
  }
}
