import { VOLUME_BLOCK_SIZE } from "../../core/model.js";
import { BlockCopier } from "./block-copier.js";
import { BlockState, BlockStateMap } from "./block-state-map.js";
import { topmostEntry, viewHasData } from "./chain-view.js";
import type { Layer } from "./layer.js";
import { dataPositionOf } from "./layer-index.js";
import type { SpaceAllocator } from "./space.js";

/**
 * Fills `target`, an empty layer that will replace the head on top of every current snapshot, so
 * that the volume reads exactly as snapshot S (at `snapshotPosition`). Once the old head is gone,
 * only blocks defined by snapshots newer than S can differ from S's view, so only those are
 * visited (cost ∝ data changed since S): each gets S's data, or zeros where S has none but a
 * newer snapshot has data.
 */
export async function fillRevertHead(
  layers: readonly Layer[],
  snapshotPosition: number,
  target: Layer,
  allocator: SpaceAllocator,
): Promise<void> {
  const newestSnapshot = layers.length - 1;
  const visited = new BlockStateMap();
  const copier = new BlockCopier(target, allocator);
  for (let position = snapshotPosition + 1; position <= newestSnapshot; position++) {
    const { map } = layers[position - 1]!;
    for (let block = map.nextDefined(0); block >= 0; block = map.nextDefined(block + 1)) {
      if (visited.set(block, BlockState.data) === BlockState.data) continue;
      const source = dataPositionOf(topmostEntry(layers, snapshotPosition, block));
      if (source !== 0) await copier.add(layers[source - 1]!, block);
      else if (viewHasData(layers, newestSnapshot, block)) target.map.set(block, BlockState.zero);
    }
  }
  await copier.finish();
}

/**
 * The byte ranges where snapshot S's view (at `snapshotPosition`) holds data, merged into runs, in
 * order: what a copy of the snapshot elsewhere (a clone of a replicated volume) must read. Each
 * block is judged by the newest layer up to S that defines it, like copySnapshotView.
 */
export function snapshotRuns(
  layers: readonly Layer[],
  snapshotPosition: number,
): Iterable<{ offset: number; length: number }> {
  const view = new BlockStateMap();
  for (let position = snapshotPosition; position >= 1; position--) {
    const { map } = layers[position - 1]!;
    for (let block = map.nextDefined(0); block >= 0; block = map.nextDefined(block + 1)) {
      if (view.get(block) === BlockState.absent) view.set(block, map.get(block));
    }
  }
  return dataRuns(view);
}

/**
 * The byte ranges where snapshot S's view (at `snapshotPosition`) may differ from an older
 * snapshot's (at `sincePosition`): every block a layer between them defines, as data or as zeros.
 * What an incremental copy of S over a copy of the older one must read; its cost follows the data
 * changed between them, not the volume's size.
 */
export function changedRuns(
  layers: readonly Layer[],
  sincePosition: number,
  snapshotPosition: number,
): Iterable<{ offset: number; length: number }> {
  const changed = new BlockStateMap();
  for (let position = sincePosition + 1; position <= snapshotPosition; position++) {
    const { map } = layers[position - 1]!;
    for (let block = map.nextDefined(0); block >= 0; block = map.nextDefined(block + 1)) {
      changed.set(block, BlockState.data);
    }
  }
  return dataRuns(changed);
}

/** The blocks a map holds as data, merged into byte runs, in order. */
function* dataRuns(map: BlockStateMap): Iterable<{ offset: number; length: number }> {
  for (let block = map.nextDefined(0); block >= 0; block = map.nextDefined(block + 1)) {
    if (map.get(block) !== BlockState.data) continue;
    const first = block;
    while (map.get(block + 1) === BlockState.data) block++;
    yield { offset: first * VOLUME_BLOCK_SIZE, length: (block - first + 1) * VOLUME_BLOCK_SIZE };
  }
}

/**
 * Copies snapshot S's view into `target`, an empty head: only blocks some layer up to S defines
 * are visited, newest layer first so each block is taken from the layer S's view reads it from.
 */
export async function copySnapshotView(
  layers: readonly Layer[],
  snapshotPosition: number,
  target: Layer,
  allocator: SpaceAllocator,
): Promise<void> {
  const visited = new BlockStateMap();
  const copier = new BlockCopier(target, allocator);
  for (let position = snapshotPosition; position >= 1; position--) {
    const layer = layers[position - 1]!;
    for (let block = layer.map.nextDefined(0); block >= 0; block = layer.map.nextDefined(block + 1)) {
      if (visited.set(block, BlockState.data) === BlockState.data) continue;
      if (layer.map.get(block) === BlockState.data) await copier.add(layer, block);
    }
  }
  await copier.finish();
}
