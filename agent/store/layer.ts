import { type FileHandle, open, rm } from "node:fs/promises";
import { join } from "node:path";
import { VOLUME_BLOCK_SIZE } from "../../core/model.js";
import { nativeExtents } from "../native/extents.js";
import { BlockState, BlockStateMap } from "./block-state-map.js";
import { readFully, writeFully, writevFully } from "./file-io.js";
import { encodeMapHeader, loadMapFile, mapFileBytes, writeMapPages } from "./map-file.js";

export function layerDataPath(dir: string, layerId: number): string {
  return join(dir, `layer-${layerId}.data`);
}

export function layerMapPath(dir: string, layerId: number): string {
  return join(dir, `layer-${layerId}.map`);
}

/** Matches the files of any layer, to find leftovers of an interrupted snapshot, merge or revert. */
export const LAYER_FILE_PATTERN = /^layer-(\d+)\.(data|map)$/;

/**
 * One layer of a replica: a sparse data file the size of the volume (block b at byte b * 4096)
 * and its map file. Knows how to make its own writes durable; knows nothing about the chain.
 */
export class Layer {
  /** Data written (or punched) since the last flush began. */
  private dataDirty = false;
  /** The flush most recently started, so flushes run one at a time. */
  private lastFlush: Promise<void> = Promise.resolve();
  /** A flush asked for but not started yet: later callers can share it, it covers their writes too. */
  private queuedFlush: Promise<void> | undefined;

  private constructor(
    readonly id: number,
    private readonly data: FileHandle,
    private readonly mapFile: FileHandle,
    readonly map: BlockStateMap,
  ) {}

  /**
   * Creates an empty layer. Only the map header is synced: the data file's length needs no sync,
   * because open() extends a short data file (nothing durable can be mapped beyond its length).
   */
  static async create(dir: string, id: number, sizeBytes: number): Promise<Layer> {
    const mapPath = layerMapPath(dir, id);
    const dataPath = layerDataPath(dir, id);
    const mapFile = await open(mapPath, "wx+");
    const data = await open(dataPath, "wx+").catch(async (error: unknown) => {
      await mapFile.close();
      throw error;
    });
    try {
      await mapFile.write(encodeMapHeader(id), 0, undefined, 0);
      await Promise.all([mapFile.truncate(mapFileBytes(sizeBytes)), data.truncate(sizeBytes)]);
      await mapFile.datasync();
      return new Layer(id, data, mapFile, new BlockStateMap());
    } catch (error) {
      await Promise.all([mapFile.close(), data.close()]);
      throw error;
    }
  }

  static async open(dir: string, id: number, sizeBytes: number): Promise<Layer> {
    const mapPath = layerMapPath(dir, id);
    const dataPath = layerDataPath(dir, id);
    const mapFile = await openExisting(mapPath);
    const data = await openExisting(dataPath).catch(async (error: unknown) => {
      await mapFile.close();
      throw error;
    });
    try {
      const map = await loadMapFile(mapPath, mapFile, id, sizeBytes);
      const { size } = await data.stat();
      if (size < sizeBytes) {
        const firstMissing = Math.floor(size / VOLUME_BLOCK_SIZE);
        for (let block = map.nextDefined(firstMissing); block >= 0; block = map.nextDefined(block + 1)) {
          if (map.get(block) === BlockState.data) {
            throw new Error(`${dataPath}: truncated layer data: ${size} bytes, but block ${block} is mapped`);
          }
        }
        await data.truncate(sizeBytes);
      }
      return new Layer(id, data, mapFile, map);
    } catch (error) {
      await Promise.all([mapFile.close(), data.close()]);
      throw error;
    }
  }

  static async removeFiles(dir: string, id: number): Promise<void> {
    await Promise.all([
      rm(layerDataPath(dir, id), { force: true }),
      rm(layerMapPath(dir, id), { force: true }),
    ]);
  }

  /** Reads `length` bytes at volume offset `position` of this layer into `target` at `targetOffset`. */
  read(target: Buffer, targetOffset: number, length: number, position: number): Promise<void> {
    return readFully(this.data, target.subarray(targetOffset, targetOffset + length), position);
  }

  /** Writes `buffers` end to end at volume offset `position`. The caller updates the map afterwards. */
  async write(buffers: Buffer[], position: number): Promise<void> {
    if (buffers.length === 1) await writeFully(this.data, buffers[0]!, position);
    else await writevFully(this.data, buffers, position);
    this.dataDirty = true;
  }

  async punch(position: number, length: number): Promise<void> {
    await nativeExtents.punchHole(this.data.fd, position, length);
    this.dataDirty = true;
  }

  get needsFlush(): boolean {
    return this.dataDirty || this.map.hasDirtyPages;
  }

  /** Every write and map change made before this call is durable when it resolves. */
  flush(): Promise<void> {
    if (this.queuedFlush !== undefined) return this.queuedFlush;
    const run = this.lastFlush.then(() => {
      this.queuedFlush = undefined;
      return this.flushNow();
    });
    this.queuedFlush = run;
    this.lastFlush = run.catch(() => undefined);
    return run;
  }

  /**
   * Data first, then the map pages captured before the data sync: a state on disk therefore
   * always describes data that is already durable, and a crash loses at most unflushed writes.
   */
  private async flushNow(): Promise<void> {
    if (!this.needsFlush) return;
    const images = this.map.captureDirtyPages();
    const dataWasDirty = this.dataDirty;
    this.dataDirty = false;
    try {
      if (dataWasDirty) await this.data.datasync();
      if (images.length > 0) {
        await writeMapPages(this.mapFile, images);
        await this.mapFile.datasync();
      }
    } catch (error) {
      this.dataDirty ||= dataWasDirty;
      this.map.markDirty(images);
      throw error;
    }
  }

  /** Grows the files for a larger volume; the new range is a hole, so this is O(1). */
  async grow(sizeBytes: number): Promise<void> {
    await Promise.all([this.data.truncate(sizeBytes), this.mapFile.truncate(mapFileBytes(sizeBytes))]);
    await this.mapFile.datasync();
  }

  /** Waits for a running flush (its files must stay open until it ends), then closes the files. */
  async close(): Promise<void> {
    await this.lastFlush;
    await Promise.all([this.data.close(), this.mapFile.close()]);
  }
}

async function openExisting(path: string): Promise<FileHandle> {
  try {
    return await open(path, "r+");
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") throw new Error(`${path}: layer file is missing`);
    throw error;
  }
}
