import { VOLUME_BLOCK_SIZE } from "../../core/model.js";
import { BlockState } from "./block-state-map.js";
import type { Layer } from "./layer.js";
import { reserveSpace, type SpaceAllocator } from "./space.js";

/** Longest run copied with one pread + one pwrite: big enough for streaming, small enough to buffer. */
export const COPY_RUN_BLOCKS = 256;

/**
 * Copies blocks from other layers into one target layer at the same block numbers, one
 * pread/pwrite per run of consecutive blocks from the same source, and marks them as data in the
 * target only after each run is written. Used by merge, revert and clone.
 */
export class BlockCopier {
  private readonly buffer = Buffer.allocUnsafe(COPY_RUN_BLOCKS * VOLUME_BLOCK_SIZE);
  private source: Layer | undefined;
  private first = 0;
  private count = 0;
  /** Blocks copied so far (each newly made data in the target). */
  copiedBlocks = 0;

  /** Callers add only blocks the target does not hold as data, so each one is new space. */
  constructor(
    private readonly target: Layer,
    private readonly allocator: SpaceAllocator,
  ) {}

  /** Queues `block` of `source` for copying. */
  async add(source: Layer, block: number): Promise<void> {
    if (source === this.source && block === this.first + this.count && this.count < COPY_RUN_BLOCKS) {
      this.count++;
      return;
    }
    await this.finish();
    this.source = source;
    this.first = block;
    this.count = 1;
  }

  /** Copies the queued run, if any. */
  async finish(): Promise<void> {
    if (this.source === undefined || this.count === 0) return;
    const { source, first, count } = this;
    this.count = 0;
    const run = this.buffer.subarray(0, count * VOLUME_BLOCK_SIZE);
    reserveSpace(this.allocator, run.length);
    try {
      await source.read(run, 0, run.length, first * VOLUME_BLOCK_SIZE);
      await this.target.write([run], first * VOLUME_BLOCK_SIZE);
    } catch (error) {
      this.allocator.release(run.length);
      throw error;
    }
    for (let block = first; block < first + count; block++) this.target.map.set(block, BlockState.data);
    this.copiedBlocks += count;
  }
}
