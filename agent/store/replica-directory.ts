import { rm } from "node:fs/promises";
import { join } from "node:path";
import { VOLUME_BLOCK_SIZE } from "../../core/model.js";
import type { Logger } from "../log.js";
import { LAYER_FILE_PATTERN, Layer } from "./layer.js";
import { MANIFEST_FILE, type Manifest } from "./manifest.js";
import { REGIONS_FILE } from "./region-epochs.js";

/** Opens every layer of the chain, or none: on any failure the opened ones are closed again. */
export async function openLayers(dir: string, manifest: Manifest): Promise<Layer[]> {
  const opened = await Promise.allSettled(
    manifest.layers.map((record) => Layer.open(dir, record.id, manifest.sizeBytes)),
  );
  const failure = opened.find((result) => result.status === "rejected");
  if (failure === undefined) return opened.map((result) => (result as PromiseFulfilledResult<Layer>).value);
  await Promise.all(
    opened.map((result) => (result.status === "fulfilled" ? result.value.close() : undefined)),
  );
  throw failure.reason;
}

/**
 * Deletes what a chain change interrupted by a crash left behind: layer files replica.json does
 * not name (a new layer before the commit, or a merged or replaced one after it) and temporary
 * replica.json and regions.map files.
 */
export async function removeLeftovers(
  dir: string,
  files: readonly string[],
  chainIds: ReadonlySet<number>,
  log: Logger,
): Promise<void> {
  const leftovers = files.filter((file) => {
    const match = LAYER_FILE_PATTERN.exec(file);
    return (
      file === `${MANIFEST_FILE}.tmp` ||
      file === `${REGIONS_FILE}.tmp` ||
      (match !== null && !chainIds.has(Number(match[1])))
    );
  });
  if (leftovers.length === 0) return;
  await Promise.all(leftovers.map((file) => rm(join(dir, file), { force: true })));
  log.info({ dir, leftovers }, "removed leftovers of an interrupted replica change");
}

/** The data bytes a closed replica holds in the pool, counted from its map files. */
export async function bytesOnDisk(dir: string, manifest: Manifest): Promise<number> {
  const layers = await openLayers(dir, manifest);
  const blocks = layers.reduce((sum, layer) => sum + layer.map.dataBlocks, 0);
  await Promise.all(layers.map((layer) => layer.close()));
  return blocks * VOLUME_BLOCK_SIZE;
}
