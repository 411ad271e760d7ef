import { VOLUME_BLOCK_SIZE } from "../../core/model.js";
import { BlockState } from "./block-state-map.js";
import { topmostEntry } from "./chain-view.js";
import type { LayerChain } from "./layer-chain.js";
import { dataPositionOf, ZERO_FLAG } from "./layer-index.js";
import { reserveSpace, type SpaceAllocator } from "./space.js";

const ZERO_BLOCK = Buffer.alloc(VOLUME_BLOCK_SIZE);

/**
 * Changes to the live view, all made in the head layer (redirect-on-write). The caller holds the
 * range lock on every block touched and keeps the chain from changing (the I/O gate).
 */
export class HeadWriter {
  constructor(
    private readonly chain: LayerChain,
    private readonly allocator: SpaceAllocator,
  ) {}

  /**
   * The blocks become data in the head's map and the index only once the write is done, so
   * neither a reader nor a flush ever sees a block that is not written yet. Space for blocks new
   * to the head is reserved first: a refusal fails the write before anything changes.
   */
  async write(offset: number, data: Buffer): Promise<void> {
    const { head, headPosition, index } = this.chain;
    const first = Math.floor(offset / VOLUME_BLOCK_SIZE);
    const last = Math.floor((offset + data.length - 1) / VOLUME_BLOCK_SIZE);
    let newBlocks = 0;
    for (let block = first; block <= last; block++) {
      if (head.map.get(block) !== BlockState.data) newBlocks++;
    }
    reserveSpace(this.allocator, newBlocks * VOLUME_BLOCK_SIZE);
    try {
      await head.write(await this.completeEdgeBlocks(offset, data), first * VOLUME_BLOCK_SIZE);
    } catch (error) {
      this.allocator.release(newBlocks * VOLUME_BLOCK_SIZE);
      throw error;
    }
    for (let block = first; block <= last; block++) {
      head.map.set(block, BlockState.data);
      index.set(block, headPosition);
    }
  }

  /**
   * Whole blocks become zeros without data I/O (see zeroBlocks); partial blocks at the edges get
   * written zeros when `zeroPartialBlocks`, and are left alone otherwise (TRIM).
   */
  async zero(offset: number, length: number, zeroPartialBlocks: boolean): Promise<void> {
    const end = offset + length;
    const wholeStart = Math.ceil(offset / VOLUME_BLOCK_SIZE) * VOLUME_BLOCK_SIZE;
    const wholeEnd = Math.max(wholeStart, Math.floor(end / VOLUME_BLOCK_SIZE) * VOLUME_BLOCK_SIZE);
    if (zeroPartialBlocks && offset < wholeStart) {
      await this.write(offset, ZERO_BLOCK.subarray(0, Math.min(wholeStart, end) - offset));
    }
    if (wholeStart < wholeEnd) {
      await this.zeroBlocks(wholeStart / VOLUME_BLOCK_SIZE, wholeEnd / VOLUME_BLOCK_SIZE - 1);
    }
    if (zeroPartialBlocks && wholeEnd < end) {
      await this.write(wholeEnd, ZERO_BLOCK.subarray(0, end - wholeEnd));
    }
  }

  /**
   * The buffers that cover `data`'s blocks whole: a partial block at either edge is read from the
   * live view and patched (read-modify-write, safe under the range lock); the caller's buffer is
   * written as it is, never copied.
   */
  private async completeEdgeBlocks(offset: number, data: Buffer): Promise<Buffer[]> {
    const lead = offset % VOLUME_BLOCK_SIZE;
    const end = offset + data.length;
    const tail = end % VOLUME_BLOCK_SIZE;
    if (lead === 0 && tail === 0) return [data];
    if (lead + data.length <= VOLUME_BLOCK_SIZE) {
      const block = await this.readBlock(offset - lead);
      data.copy(block, lead);
      return [block];
    }
    const [leadBlock, tailBlock] = await Promise.all([
      lead === 0 ? undefined : this.readBlock(offset - lead),
      tail === 0 ? undefined : this.readBlock(end - tail),
    ]);
    const buffers = [data.subarray(lead === 0 ? 0 : VOLUME_BLOCK_SIZE - lead, data.length - tail)];
    if (leadBlock !== undefined) {
      data.copy(leadBlock, lead, 0, VOLUME_BLOCK_SIZE - lead);
      buffers.unshift(leadBlock);
    }
    if (tailBlock !== undefined) {
      data.copy(tailBlock, 0, data.length - tail);
      buffers.push(tailBlock);
    }
    return buffers;
  }

  private async readBlock(position: number): Promise<Buffer> {
    const block = Buffer.allocUnsafe(VOLUME_BLOCK_SIZE);
    await this.chain.read(block, position);
    return block;
  }

  /**
   * Visits only blocks some layer defines (the others already read as zeros). Head data is punched
   * out a run at a time; where an older layer would show through with data, the head marks the
   * block as zeros instead.
   */
  private async zeroBlocks(first: number, last: number): Promise<void> {
    const { head, headPosition, index } = this.chain;
    let runStart = -1;
    let runEnd = -1;
    for (
      let block = index.nextDefined(first);
      block >= 0 && block <= last;
      block = index.nextDefined(block + 1)
    ) {
      const state = head.map.get(block);
      if (state === BlockState.data) {
        if (runStart >= 0 && block === runEnd + 1) {
          runEnd = block;
          continue;
        }
        if (runStart >= 0) await this.punchHeadRun(runStart, runEnd);
        runStart = runEnd = block;
      } else if (state === BlockState.absent && index.dataPositionOf(block) !== 0) {
        head.map.set(block, BlockState.zero);
        index.set(block, headPosition | ZERO_FLAG);
      }
    }
    if (runStart >= 0) await this.punchHeadRun(runStart, runEnd);
  }

  /** Punches blocks the head holds as data, then records them as absent or zeros, and frees them. */
  private async punchHeadRun(first: number, last: number): Promise<void> {
    const { head, headPosition, index, layers } = this.chain;
    await head.punch(first * VOLUME_BLOCK_SIZE, (last - first + 1) * VOLUME_BLOCK_SIZE);
    for (let block = first; block <= last; block++) {
      const below = topmostEntry(layers, headPosition - 1, block);
      if (dataPositionOf(below) !== 0) {
        head.map.set(block, BlockState.zero);
        index.set(block, headPosition | ZERO_FLAG);
      } else {
        head.map.set(block, BlockState.absent);
        index.set(block, below);
      }
    }
    this.allocator.release((last - first + 1) * VOLUME_BLOCK_SIZE);
  }
}
