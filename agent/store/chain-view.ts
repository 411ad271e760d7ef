import { VOLUME_BLOCK_SIZE } from "../../core/model.js";
import { BlockState } from "./block-state-map.js";
import type { Layer } from "./layer.js";
import { type BlockSourceLookup, dataPositionOf, entryFor, type IndexEntry } from "./layer-index.js";

/**
 * The view of the chain as seen from `position` (a snapshot's view, or the live view from the
 * head): the index entry of the top-most layer at or below `position` that defines `block`.
 * Costs O(chain length); the live read path uses the LayerIndex instead.
 */
export function topmostEntry(layers: readonly Layer[], position: number, block: number): IndexEntry {
  for (let p = position; p >= 1; p--) {
    const state = layers[p - 1]!.map.get(block);
    if (state !== BlockState.absent) return entryFor(p, state);
  }
  return 0;
}

/** Whether the view from `position` has data (not zeros) for `block`. */
export function viewHasData(layers: readonly Layer[], position: number, block: number): boolean {
  return dataPositionOf(topmostEntry(layers, position, block)) !== 0;
}

/** A frozen snapshot's view, looked up block by block without an index of its own. */
export class SnapshotLookup implements BlockSourceLookup {
  constructor(
    private readonly layers: readonly Layer[],
    private readonly position: number,
  ) {}

  dataPositionOf(block: number): number {
    return dataPositionOf(topmostEntry(this.layers, this.position, block));
  }
}

/**
 * Reads bytes [offset, offset + target.length) of a view into `target`: consecutive blocks served
 * by the same layer become one pread (a block lives at the same byte offset in every layer file,
 * so a run needs no alignment), blocks with no data are zero-filled. All lookups happen before
 * the first await, so the view cannot change under a read that holds the I/O gate.
 */
export async function readView(
  layers: readonly Layer[],
  lookup: BlockSourceLookup,
  target: Buffer,
  offset: number,
): Promise<void> {
  const end = offset + target.length;
  let block = Math.floor(offset / VOLUME_BLOCK_SIZE);
  let runStart = offset;
  let pending: Promise<void> | Promise<void>[] | undefined;
  while (runStart < end) {
    const source = lookup.dataPositionOf(block);
    block++;
    while (block * VOLUME_BLOCK_SIZE < end && lookup.dataPositionOf(block) === source) block++;
    const runEnd = Math.min(block * VOLUME_BLOCK_SIZE, end);
    if (source === 0) {
      target.fill(0, runStart - offset, runEnd - offset);
    } else {
      const read = layers[source - 1]!.read(target, runStart - offset, runEnd - runStart, runStart);
      if (pending === undefined) pending = read;
      else if (Array.isArray(pending)) pending.push(read);
      else pending = [pending, read];
    }
    runStart = runEnd;
  }
  if (Array.isArray(pending)) await Promise.all(pending);
  else await pending;
}
