import { VOLUME_BLOCK_SIZE } from "../../core/model.js";
import type { BlockStateMap } from "./block-state-map.js";
import { readView, SnapshotLookup, topmostEntry } from "./chain-view.js";
import type { Layer } from "./layer.js";
import { entryFor, LayerIndex, positionOf } from "./layer-index.js";

/**
 * A replica's layers in chain order (position 1 = the oldest snapshot, the last = the writable
 * head) and the live index over them. Every change to the chain goes through here so that the
 * index always names, for each block, the top-most layer defining it. Changes that move layers
 * must run while no I/O is in flight (the replica's gate).
 */
export class LayerChain {
  private constructor(
    private chain: readonly Layer[],
    readonly index: LayerIndex,
  ) {}

  /** Builds the index from the maps: each layer, oldest first, overrides the ones below. */
  static of(layers: readonly Layer[]): LayerChain {
    const index = new LayerIndex();
    layers.forEach((layer, i) => {
      for (let block = layer.map.nextDefined(0); block >= 0; block = layer.map.nextDefined(block + 1)) {
        index.set(block, entryFor(i + 1, layer.map.get(block)));
      }
    });
    return new LayerChain(layers, index);
  }

  get layers(): readonly Layer[] {
    return this.chain;
  }

  get head(): Layer {
    return this.chain[this.chain.length - 1]!;
  }

  get headPosition(): number {
    return this.chain.length;
  }

  layerAt(position: number): Layer {
    return this.chain[position - 1]!;
  }

  /** Data blocks in all layers. */
  get dataBlocks(): number {
    return this.chain.reduce((sum, layer) => sum + layer.map.dataBlocks, 0);
  }

  /** Reads the live view. */
  read(target: Buffer, offset: number): Promise<void> {
    return readView(this.chain, this.index, target, offset);
  }

  /** Reads the frozen view of the snapshot at `position`. */
  readSnapshot(position: number, target: Buffer, offset: number): Promise<void> {
    return readView(this.chain, new SnapshotLookup(this.chain, position), target, offset);
  }

  /** A new, empty head above the current one (which becomes a snapshot): the index is unchanged. */
  pushHead(layer: Layer): void {
    this.chain = [...this.chain, layer];
  }

  /** Swaps the head for `layer`: only blocks either of them defines can change layer in the view. */
  replaceHead(layer: Layer): void {
    const previous = this.head;
    this.chain = [...this.chain.slice(0, -1), layer];
    this.reindex(previous.map);
    this.reindex(layer.map);
  }

  /**
   * Drops the layer at `position` after a merge into its child. Positions above it move down by one;
   * entries still naming it are zeros the merge dropped (nothing below had data), which now come
   * from whatever is below.
   */
  remove(position: number): void {
    const layers = this.chain.filter((_, i) => i !== position - 1);
    this.chain = layers;
    this.index.rewriteEntries((entry, block) => {
      const entryPosition = positionOf(entry);
      if (entryPosition < position) return entry;
      if (entryPosition > position) return entry - 1;
      return topmostEntry(layers, position - 1, block);
    });
  }

  /** The live view's byte ranges that hold data, merged into runs, in order. */
  *allocatedRuns(): Iterable<{ offset: number; length: number }> {
    const index = this.index;
    for (let block = index.nextDefined(0); block >= 0; block = index.nextDefined(block + 1)) {
      if (index.dataPositionOf(block) === 0) continue;
      const first = block;
      while (index.dataPositionOf(block + 1) !== 0) block++;
      yield { offset: first * VOLUME_BLOCK_SIZE, length: (block - first + 1) * VOLUME_BLOCK_SIZE };
    }
  }

  /** Recomputes the index entries of the blocks `map` defines (after that layer changed outside the index). */
  reindex(map: BlockStateMap): void {
    for (let block = map.nextDefined(0); block >= 0; block = map.nextDefined(block + 1)) {
      this.index.set(block, topmostEntry(this.chain, this.chain.length, block));
    }
  }
}
