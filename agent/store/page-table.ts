import { MAX_VOLUME_SIZE, VOLUME_BLOCK_SIZE } from "../../core/model.js";

/**
 * Blocks covered by one in-memory page of a layer map or of the layer index. 16384 blocks make
 * a 2-bit map page exactly 4 KiB (one filesystem block on disk) and cover 64 MiB of volume.
 */
export const BLOCKS_PER_PAGE = 16384;

/** Pages per directory slice: a 64 TiB volume needs 1024 slices, a 64 GiB one a single slice. */
const PAGES_PER_SLICE = 1024;
const MAX_PAGES = Math.ceil(MAX_VOLUME_SIZE / VOLUME_BLOCK_SIZE / BLOCKS_PER_PAGE);
const MAX_SLICES = Math.ceil(MAX_PAGES / PAGES_PER_SLICE);

/**
 * A sparse array of pages addressed by page number. Slices of the directory are allocated on first
 * use, so a thin volume pays memory only for the 64 MiB regions it has written, even at 64 TiB.
 */
export class PageTable<Page> {
  private readonly slices: Array<Array<Page | undefined> | undefined> = new Array(MAX_SLICES).fill(undefined);

  get(pageNumber: number): Page | undefined {
    return this.slices[Math.floor(pageNumber / PAGES_PER_SLICE)]?.[pageNumber % PAGES_PER_SLICE];
  }

  set(pageNumber: number, page: Page): void {
    const sliceNumber = Math.floor(pageNumber / PAGES_PER_SLICE);
    if (sliceNumber >= MAX_SLICES) throw new RangeError(`page ${pageNumber} is beyond the largest volume`);
    let slice = this.slices[sliceNumber];
    if (slice === undefined) {
      slice = new Array(PAGES_PER_SLICE).fill(undefined);
      this.slices[sliceNumber] = slice;
    }
    slice[pageNumber % PAGES_PER_SLICE] = page;
  }

  /** The first allocated page number at or after `from`, or -1. */
  nextPage(from: number): number {
    for (let sliceNumber = Math.floor(from / PAGES_PER_SLICE); sliceNumber < MAX_SLICES; sliceNumber++) {
      const slice = this.slices[sliceNumber];
      if (slice === undefined) continue;
      const start = sliceNumber === Math.floor(from / PAGES_PER_SLICE) ? from % PAGES_PER_SLICE : 0;
      for (let i = start; i < PAGES_PER_SLICE; i++) {
        if (slice[i] !== undefined) return sliceNumber * PAGES_PER_SLICE + i;
      }
    }
    return -1;
  }
}
