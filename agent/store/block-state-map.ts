import { BLOCKS_PER_PAGE, PageTable } from "./page-table.js";

/** What one layer says about one block. The values are the 2-bit codes stored in map files. */
export const BlockState = {
  /** The layer does not define the block: look in the layer below. */
  absent: 0,
  /** The block's bytes are in this layer's data file. */
  data: 1,
  /** The block reads as zeros whatever the layers below hold (TRIM / WRITE_ZEROES over older data). */
  zero: 2,
} as const;
export type BlockState = (typeof BlockState)[keyof typeof BlockState];

const BITS_PER_BLOCK = 2;
const BLOCKS_PER_BYTE = 8 / BITS_PER_BLOCK;
const STATE_MASK = 0b11;
/** The one 2-bit code no writer produces; finding it in a map file means the file is damaged. */
const INVALID_STATE = 0b11;

export const MAP_PAGE_BYTES = BLOCKS_PER_PAGE / BLOCKS_PER_BYTE;

/** Per map byte value: how many of its 4 blocks hold data, or -1 if one has the invalid code. */
const DATA_BLOCKS_IN_BYTE = Int8Array.from({ length: 256 }, (_, byte) => {
  let count = 0;
  for (let shift = 0; shift < 8; shift += BITS_PER_BLOCK) {
    const state = (byte >> shift) & STATE_MASK;
    if (state === INVALID_STATE) return -1;
    if (state === BlockState.data) count++;
  }
  return count;
});

/** The low bit of every 2-bit pair in a 32-bit word. */
const EVEN_BITS = 0x55555555;

function wordsOf(page: Uint8Array): Uint32Array {
  return new Uint32Array(page.buffer, page.byteOffset, page.byteLength / 4);
}

function popcount32(word: number): number {
  let w = word - ((word >>> 1) & 0x55555555);
  w = (w & 0x33333333) + ((w >>> 2) & 0x33333333);
  return (((w + (w >>> 4)) & 0x0f0f0f0f) * 0x01010101) >>> 24;
}

export interface MapPageImage {
  readonly pageNumber: number;
  readonly bytes: Buffer;
}

/**
 * One layer's block states, 2 bits per block, in pages allocated only when a block in them is
 * defined. Remembers which pages changed since they were last captured for the map file.
 */
export class BlockStateMap {
  private readonly pages = new PageTable<Uint8Array>();
  private readonly dirtyPages = new Set<number>();
  /** Blocks in the `data` state: the space this layer holds in the pool. */
  dataBlocks = 0;

  get(block: number): BlockState {
    const page = this.pages.get(Math.floor(block / BLOCKS_PER_PAGE));
    if (page === undefined) return BlockState.absent;
    const slot = block % BLOCKS_PER_PAGE;
    return ((page[slot >> 2]! >> ((slot & 3) * BITS_PER_BLOCK)) & STATE_MASK) as BlockState;
  }

  /** Returns the previous state; marks the page dirty only when the state actually changes. */
  set(block: number, state: BlockState): BlockState {
    const pageNumber = Math.floor(block / BLOCKS_PER_PAGE);
    let page = this.pages.get(pageNumber);
    if (page === undefined) {
      if (state === BlockState.absent) return BlockState.absent;
      page = new Uint8Array(MAP_PAGE_BYTES);
      this.pages.set(pageNumber, page);
    }
    const slot = block % BLOCKS_PER_PAGE;
    const shift = (slot & 3) * BITS_PER_BLOCK;
    const byte = page[slot >> 2]!;
    const previous = ((byte >> shift) & STATE_MASK) as BlockState;
    if (previous === state) return previous;
    page[slot >> 2] = (byte & ~(STATE_MASK << shift)) | (state << shift);
    if (previous === BlockState.data) this.dataBlocks--;
    if (state === BlockState.data) this.dataBlocks++;
    this.dirtyPages.add(pageNumber);
    return previous;
  }

  /** The first block at or after `from` that this layer defines (data or zero), or -1. */
  nextDefined(from: number): number {
    let pageNumber = this.pages.nextPage(Math.floor(from / BLOCKS_PER_PAGE));
    let slot = pageNumber === Math.floor(from / BLOCKS_PER_PAGE) ? from % BLOCKS_PER_PAGE : 0;
    while (pageNumber >= 0) {
      const page = this.pages.get(pageNumber)!;
      for (let byteIndex = slot >> 2; byteIndex < MAP_PAGE_BYTES; byteIndex++) {
        const byte = page[byteIndex]!;
        if (byte === 0) continue;
        const firstSlot = Math.max(byteIndex * BLOCKS_PER_BYTE, slot);
        for (let s = firstSlot; s < (byteIndex + 1) * BLOCKS_PER_BYTE; s++) {
          if ((byte >> ((s & 3) * BITS_PER_BLOCK)) & STATE_MASK) return pageNumber * BLOCKS_PER_PAGE + s;
        }
      }
      pageNumber = this.pages.nextPage(pageNumber + 1);
      slot = 0;
    }
    return -1;
  }

  /**
   * Blocks that hold data here and that `upper` also defines: what a snapshot holds alone, since
   * the layer above hides it. Counted 16 blocks per 32-bit word, so listing the snapshots of a
   * large volume does not stall the event loop the way a per-block walk would.
   */
  countDataHiddenBy(upper: BlockStateMap): number {
    let count = 0;
    for (
      let pageNumber = this.pages.nextPage(0);
      pageNumber >= 0;
      pageNumber = this.pages.nextPage(pageNumber + 1)
    ) {
      const upperPage = upper.pages.get(pageNumber);
      if (upperPage === undefined) continue;
      const lowerWords = wordsOf(this.pages.get(pageNumber)!);
      const upperWords = wordsOf(upperPage);
      for (let i = 0; i < lowerWords.length; i++) {
        const lower = lowerWords[i]!;
        const above = upperWords[i]!;
        // Per 2-bit pair: data is 01, defined is anything but 00; keep one bit per pair.
        const data = lower & ~(lower >>> 1) & EVEN_BITS;
        const defined = (above | (above >>> 1)) & EVEN_BITS;
        count += popcount32(data & defined);
      }
    }
    return count;
  }

  get hasDirtyPages(): boolean {
    return this.dirtyPages.size > 0;
  }

  /** Copies of the pages changed since the last capture, which are no longer counted as dirty. */
  captureDirtyPages(): MapPageImage[] {
    const images: MapPageImage[] = [];
    for (const pageNumber of this.dirtyPages) {
      images.push({ pageNumber, bytes: Buffer.from(this.pages.get(pageNumber)!) });
    }
    this.dirtyPages.clear();
    return images;
  }

  /** For a capture that could not be written: those pages must be written by the next flush. */
  markDirty(images: readonly MapPageImage[]): void {
    for (const image of images) this.dirtyPages.add(image.pageNumber);
  }

  /**
   * Installs a page read from a map file (not dirty: it is what the file holds). Returns the
   * page-relative byte offset holding an invalid state code, or -1 when the page is valid.
   */
  loadPage(pageNumber: number, bytes: Uint8Array): number {
    const page = new Uint8Array(bytes);
    let dataBlocks = 0;
    for (let byteIndex = 0; byteIndex < MAP_PAGE_BYTES; byteIndex++) {
      const count = DATA_BLOCKS_IN_BYTE[page[byteIndex]!]!;
      if (count < 0) return byteIndex;
      dataBlocks += count;
    }
    this.pages.set(pageNumber, page);
    this.dataBlocks += dataBlocks;
    return -1;
  }
}
