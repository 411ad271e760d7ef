import { randomUUID } from "node:crypto";
import { mkdir, readdir, rm } from "node:fs/promises";
import { invalid, notFound, StrataError } from "../../core/errors.js";
import { MAX_VOLUME_SIZE, VOLUME_BLOCK_SIZE } from "../../core/model.js";
import {
  type BlockDevice,
  BlockIoError,
  type ByteRange,
  toBlockIoError,
  type WriteOptions,
  type WriteZeroesOptions,
} from "../block-device.js";
import { borrowIoBuffer, returnIoBuffer } from "../io-buffers.js";
import { log as defaultLog, type Logger } from "../log.js";
import { Mutex } from "../mutex.js";
import { HeadWriter } from "./head-writer.js";
import { IoGate } from "./io-gate.js";
import { Layer } from "./layer.js";
import { LayerChain } from "./layer-chain.js";
import { MAX_CHAIN_POSITION } from "./layer-index.js";
import {
  MANIFEST_FILE,
  type Manifest,
  newManifest,
  readManifest,
  type SnapshotRecord,
  writeManifest,
} from "./manifest.js";
import { mergeIntoChild } from "./merge.js";
import { RangeLocks } from "./range-locks.js";
import { RegionEpochs } from "./region-epochs.js";
import { bytesOnDisk, openLayers, removeLeftovers } from "./replica-directory.js";
import type { SpaceAllocator } from "./space.js";
import { changedRuns, copySnapshotView, fillRevertHead, snapshotRuns } from "./view-copy.js";

export interface ReplicaIdentity {
  volumeId: string;
  replicaId: string;
  /** The volume's epoch this replica last accepted (replication checks it on every mutation). */
  epoch: number;
}

export interface ReplicaOptions {
  /** The pool every newly allocated block is reserved from. */
  allocator: SpaceAllocator;
  log?: Logger;
}

export interface CreateReplicaOptions extends ReplicaIdentity, ReplicaOptions {
  sizeBytes: number;
}

export interface SnapshotInfo extends SnapshotRecord {
  /** The layer holding the blocks written between the previous snapshot and this one. */
  layerId: number;
}

/** Dirty data is flushed at least this often, bounding what a crash loses when clients never FLUSH. */
const PERIODIC_FLUSH_MS = 5000;

/**
 * One replica of one volume, in one directory: a chain of layers (oldest snapshot first, the
 * writable head last) described by replica.json, with an in-memory index that serves each block
 * from the top-most layer defining it. Writes go to the head only (redirect-on-write), so a
 * snapshot just freezes the head and starts a new one.
 *
 * Concurrency: reads and writes run concurrently; writes, zeroes and merge copies to the same
 * blocks are ordered by range locks; chain changes (snapshot, delete, revert, clone, resize,
 * close) run one at a time and hold I/O back (the gate) only while they switch layers in memory.
 */
export class Replica implements BlockDevice {
  private readonly gate = new IoGate();
  private readonly locks = new RangeLocks();
  private readonly chainLock = new Mutex();
  private readonly writer: HeadWriter;
  private readonly flushTimer: NodeJS.Timeout;
  private closed = false;

  private constructor(
    private readonly dir: string,
    /** Kept in step with the chain: manifest.layers[i] describes the layer at position i + 1. */
    private manifest: Manifest,
    private readonly chain: LayerChain,
    /** Which regions changed at which epoch: what a resync of another replica from this one copies. */
    private readonly regions: RegionEpochs,
    private readonly allocator: SpaceAllocator,
    private readonly log: Logger,
  ) {
    this.writer = new HeadWriter(chain, allocator);
    this.flushTimer = setInterval(() => this.flushInBackground(), PERIODIC_FLUSH_MS);
    this.flushTimer.unref();
  }

  static async create(dir: string, options: CreateReplicaOptions): Promise<Replica> {
    checkVolumeSize(options.sizeBytes);
    const manifest = newManifest(options);
    const log = options.log ?? defaultLog;
    await mkdir(dir, { recursive: true });
    const files = await readdir(dir);
    if (files.includes(MANIFEST_FILE)) {
      throw new StrataError("ALREADY_EXISTS", `${dir}: a replica already exists here`);
    }
    await removeLeftovers(dir, files, new Set(), log);
    const head = await Layer.create(dir, manifest.layers[0]!.id, manifest.sizeBytes);
    let regions: RegionEpochs;
    try {
      regions = await RegionEpochs.create(dir, manifest.sizeBytes);
      await writeManifest(dir, manifest);
    } catch (error) {
      await head.close();
      await Layer.removeFiles(dir, head.id);
      throw error;
    }
    return new Replica(dir, manifest, LayerChain.of([head]), regions, options.allocator, log);
  }

  /**
   * Opens an existing replica, validating replica.json and every map file (a damaged one fails
   * with an Error naming the file and the damage). Its space is adopted by the allocator, never
   * refused: it is already on the drive.
   */
  static async open(dir: string, options: ReplicaOptions): Promise<Replica> {
    const manifest = await readManifest(dir);
    const log = options.log ?? defaultLog;
    await removeLeftovers(dir, await readdir(dir), new Set(manifest.layers.map((layer) => layer.id)), log);
    const chain = LayerChain.of(await openLayers(dir, manifest));
    let regions: RegionEpochs;
    try {
      regions = await RegionEpochs.open(dir, manifest.sizeBytes, manifest.epoch, log);
    } catch (error) {
      await Promise.all(chain.layers.map((layer) => layer.close()));
      throw error;
    }
    options.allocator.adopt(chain.dataBlocks * VOLUME_BLOCK_SIZE);
    return new Replica(dir, manifest, chain, regions, options.allocator, log);
  }

  /**
   * Deletes a closed replica's directory and gives its space back to the allocator. A directory
   * without a valid replica.json (a create that never finished) holds no accounted space.
   */
  static async destroy(dir: string, allocator: SpaceAllocator): Promise<void> {
    const manifest = await readManifest(dir).catch(() => undefined);
    const heldBytes = manifest === undefined ? 0 : await bytesOnDisk(dir, manifest);
    await rm(dir, { recursive: true, force: true });
    allocator.release(heldBytes);
  }

  get volumeId(): string {
    return this.manifest.volumeId;
  }

  get replicaId(): string {
    return this.manifest.replicaId;
  }

  get sizeBytes(): number {
    return this.manifest.sizeBytes;
  }

  get epoch(): number {
    return this.manifest.epoch;
  }

  /** Bytes of data blocks in all layers: what the replica holds in the pool. */
  get allocatedBytes(): number {
    return this.chain.dataBlocks * VOLUME_BLOCK_SIZE;
  }

  async read(offset: number, length: number): Promise<Buffer> {
    await this.gate.enter();
    try {
      const target = borrowIoBuffer(length);
      try {
        await this.chain.read(target, offset);
      } catch (error) {
        returnIoBuffer(target);
        throw error;
      }
      return target;
    } catch (error) {
      throw toBlockIoError(error);
    } finally {
      this.gate.leave();
    }
  }

  write(offset: number, data: Buffer, options: WriteOptions): Promise<void> {
    return this.mutate(offset, data.length, options, () => this.writer.write(offset, data));
  }

  /**
   * Whole blocks become zeros without writing any: punched out of the head, and marked as zeros
   * there when an older layer has data for them. `mayPunch: false` (NBD_CMD_FLAG_NO_HOLE) gets the
   * same treatment: allocated zeros would not guarantee later writes space anyway, since after a
   * snapshot every overwrite allocates a new block (redirect-on-write).
   */
  writeZeroes(offset: number, length: number, options: WriteZeroesOptions): Promise<void> {
    return this.mutate(offset, length, options, () => this.writer.zero(offset, length, true));
  }

  /** Like writeZeroes, but partial blocks at the edges are left as they are (TRIM makes them unspecified). */
  trim(offset: number, length: number, options: WriteOptions): Promise<void> {
    return this.mutate(offset, length, options, () => this.writer.zero(offset, length, false));
  }

  async flush(): Promise<void> {
    await this.gate.enter();
    try {
      await this.chain.head.flush();
    } catch (error) {
      throw toBlockIoError(error);
    } finally {
      this.gate.leave();
    }
  }

  /**
   * Runs one mutation under the I/O gate and a lock on its blocks; FUA flushes before returning.
   * The regions it touches are marked changed at the replica's epoch before any block is.
   */
  private async mutate(offset: number, length: number, options: WriteOptions, work: () => Promise<void>) {
    await this.gate.enter();
    try {
      const marking = this.regions.mark(offset, length, this.manifest.epoch);
      if (marking !== undefined) await marking;
      if (length > 0) {
        const range = await this.locks.acquire(
          Math.floor(offset / VOLUME_BLOCK_SIZE),
          Math.floor((offset + length - 1) / VOLUME_BLOCK_SIZE),
        );
        try {
          await work();
        } finally {
          this.locks.release(range);
        }
      }
      if (options.fua) await this.chain.head.flush();
    } catch (error) {
      throw toBlockIoError(error);
    } finally {
      this.gate.leave();
    }
  }

  private flushInBackground(): void {
    const head = this.chain.head;
    if (!head.needsFlush) return;
    head.flush().catch((error: unknown) => {
      this.log.error({ err: error, dir: this.dir }, "periodic replica flush failed");
    });
  }

  /** Snapshots, oldest first. */
  snapshots(): SnapshotInfo[] {
    return this.manifest.layers.slice(0, -1).map((layer) => ({ ...layer.snapshot!, layerId: layer.id }));
  }

  /**
   * Freezes the head as a snapshot and starts an empty head: O(1) in the volume size (a flush of
   * the head, two small file creations and the replica.json rename). I/O is held back meanwhile.
   */
  /** `id` lets a coordinator give one snapshot the same id on every replica. */
  snapshot(name: string, id: string = randomUUID()): Promise<SnapshotInfo> {
    return this.changeChain(async () => {
      if (this.chain.headPosition >= MAX_CHAIN_POSITION) {
        throw new StrataError(
          "RESOURCE_EXHAUSTED",
          `${this.dir}: at most ${MAX_CHAIN_POSITION - 1} snapshots`,
        );
      }
      const started = performance.now();
      const resume = await this.gate.quiesce();
      try {
        const frozen = this.chain.head;
        await frozen.flush();
        const layerId = this.manifest.nextLayerId;
        const newHead = await Layer.create(this.dir, layerId, this.sizeBytes);
        const record = { id, name, createdAt: new Date().toISOString() };
        await this.commitWithNewLayer(newHead, {
          ...this.manifest,
          layers: [
            ...this.manifest.layers.slice(0, -1),
            { id: frozen.id, snapshot: record },
            { id: layerId, snapshot: null },
          ],
          nextLayerId: layerId + 1,
        });
        this.chain.pushHead(newHead);
        const durationMs = performance.now() - started;
        this.log.info(
          { dir: this.dir, snapshot: name, layerId: frozen.id, durationMs },
          "replica snapshot taken",
        );
        return { ...record, layerId: frozen.id };
      } finally {
        resume();
      }
    });
  }

  /** What deleting the snapshot would give back: its data blocks the next layer up overrides. */
  exclusiveBytes(snapshotId: string): number {
    const position = this.positionOf(snapshotId);
    const { map } = this.chain.layerAt(position);
    return map.countDataHiddenBy(this.chain.layerAt(position + 1).map) * VOLUME_BLOCK_SIZE;
  }

  /**
   * Deletes a snapshot by merging its layer into the next one up while I/O goes on (see
   * mergeIntoChild for why a crash at any step is harmless). I/O is held back only while the
   * layer leaves the chain in memory.
   */
  deleteSnapshot(snapshotId: string): Promise<void> {
    return this.changeChain(async () => {
      const position = this.positionOf(snapshotId);
      const doomed = this.chain.layerAt(position);
      const movedBlocks = await mergeIntoChild(this.chain, position, this.locks);
      await this.chain.layerAt(position + 1).flush();
      const manifest = {
        ...this.manifest,
        layers: this.manifest.layers.filter((_, i) => i !== position - 1),
      };
      await writeManifest(this.dir, manifest);
      const resume = await this.gate.quiesce();
      try {
        this.manifest = manifest;
        this.chain.remove(position);
      } finally {
        resume();
      }
      const freedBlocks = doomed.map.dataBlocks - movedBlocks;
      await doomed.close();
      await Layer.removeFiles(this.dir, doomed.id);
      this.allocator.release(freedBlocks * VOLUME_BLOCK_SIZE);
      this.log.info(
        { dir: this.dir, snapshot: snapshotId, movedBlocks, freedBlocks },
        "replica snapshot deleted",
      );
    });
  }

  /**
   * Makes the volume read exactly as the snapshot; newer snapshots stay as they are. The caller
   * guarantees no I/O meanwhile. A new head is built beside the old one (cost ∝ data changed since
   * the snapshot), flushed, then swapped in by rewriting replica.json.
   */
  revert(snapshotId: string): Promise<void> {
    return this.changeChain(async () => {
      const position = this.positionOf(snapshotId);
      const resume = await this.gate.quiesce();
      try {
        await this.regions.markAll(this.epoch);
        const oldHead = this.chain.head;
        const layerId = this.manifest.nextLayerId;
        const newHead = await Layer.create(this.dir, layerId, this.sizeBytes);
        const manifest = {
          ...this.manifest,
          layers: [...this.manifest.layers.slice(0, -1), { id: layerId, snapshot: null }],
          nextLayerId: layerId + 1,
        };
        await this.commitWithNewLayer(newHead, manifest, async () => {
          await fillRevertHead(this.chain.layers, position, newHead, this.allocator);
          await newHead.flush();
        });
        this.chain.replaceHead(newHead);
        const freedBlocks = oldHead.map.dataBlocks;
        await oldHead.close();
        await Layer.removeFiles(this.dir, oldHead.id);
        this.allocator.release(freedBlocks * VOLUME_BLOCK_SIZE);
        this.log.info(
          { dir: this.dir, snapshot: snapshotId, copiedBlocks: newHead.map.dataBlocks },
          "replica reverted",
        );
      } finally {
        resume();
      }
    });
  }

  /**
   * A new, independent replica in `targetDir` whose head holds exactly the snapshot's view. Only
   * allocated blocks are copied, found through the layer maps. I/O goes on meanwhile.
   */
  cloneSnapshot(
    snapshotId: string,
    targetDir: string,
    options: ReplicaIdentity & ReplicaOptions,
  ): Promise<Replica> {
    return this.changeChain(async () => {
      const position = this.positionOf(snapshotId);
      const clone = await Replica.create(targetDir, { ...options, sizeBytes: this.sizeBytes });
      try {
        const target = clone.chain.head;
        await copySnapshotView(this.chain.layers, position, target, options.allocator);
        clone.chain.reindex(target.map);
        await target.flush();
        // Written below the mutations: a resync from the clone must copy all of it.
        await clone.regions.markAll(options.epoch);
      } catch (error) {
        await clone.discard();
        throw error;
      }
      return clone;
    });
  }

  /** Reads a snapshot's frozen view, bytes [offset, offset + length). */
  async readSnapshot(snapshotId: string, offset: number, length: number): Promise<Buffer> {
    if (offset < 0 || length < 0 || offset + length > this.sizeBytes) {
      throw new BlockIoError("EINVAL", `a read of ${length} bytes at ${offset} is outside the volume`);
    }
    await this.gate.enter();
    try {
      const target = Buffer.allocUnsafe(length);
      await this.chain.readSnapshot(this.positionOf(snapshotId), target, offset);
      return target;
    } finally {
      this.gate.leave();
    }
  }

  /**
   * The byte ranges of the live view that hold data, in order, merged into runs: what a rebuild
   * must copy. A consistent picture only while the volume does not change; a rebuild must also
   * forward the writes made while it copies.
   */
  allocatedRuns(): Iterable<ByteRange> {
    return this.chain.allocatedRuns();
  }

  /**
   * The byte ranges where a snapshot's view holds data, in order: what a copy of it reads. Given
   * an older snapshot (`since`), the ranges where the two views may differ: what an incremental
   * copy over a copy of the older one reads.
   */
  snapshotRuns(snapshotId: string, since?: string): ByteRange[] {
    const position = this.positionOf(snapshotId);
    if (since === undefined) return Array.from(snapshotRuns(this.chain.layers, position));
    const sincePosition = this.positionOf(since);
    if (sincePosition >= position) {
      throw invalid(`snapshot ${since} is not older than snapshot ${snapshotId}`);
    }
    return Array.from(changedRuns(this.chain.layers, sincePosition, position));
  }

  /**
   * The byte ranges of the regions this replica changed at epoch `since` or later, in order: with
   * the same from an in-sync replica, what a replica that left at `since` must copy to be identical.
   */
  changedSince(since: number): ByteRange[] {
    return this.regions.changedSince(since, this.sizeBytes);
  }

  /** Grows the volume (never shrinks): the files get longer holes, so it is O(1) in the size. */
  resize(sizeBytes: number): Promise<void> {
    return this.changeChain(async () => {
      if (sizeBytes < this.sizeBytes) {
        throw invalid(`cannot shrink a replica from ${this.sizeBytes} to ${sizeBytes} bytes`);
      }
      checkVolumeSize(sizeBytes);
      if (sizeBytes === this.sizeBytes) return;
      // Files first: a crash before the rename leaves longer files, which open() accepts.
      await Promise.all(this.chain.layers.map((layer) => layer.grow(sizeBytes)));
      await this.regions.grow(sizeBytes);
      await this.commit({ ...this.manifest, sizeBytes });
    });
  }

  /**
   * Records the epoch of the volume's replica set that this replica now belongs to, after making
   * every earlier write durable: an epoch is a durability boundary. A replica that crashes and
   * comes back has lost nothing from before its epoch, and what it may have lost since is in the
   * regions its write-ahead marks give for that epoch — which is what a resync copies.
   */
  setEpoch(epoch: number): Promise<void> {
    return this.changeChain(async () => {
      await this.chain.head.flush();
      await this.commit({ ...this.manifest, epoch });
    });
  }

  /**
   * Waits for I/O in flight, flushes and closes the files; later calls fail with ESHUTDOWN. The
   * space stays accounted to the allocator: the files are still on the drive (see destroy).
   */
  /**
   * `flush: false` is for a replica about to be deleted: syncing data that is going away can take
   * seconds (a crashed writer may have left the page cache full of it) and would make the delete
   * time out for nothing.
   */
  close(options: { flush: boolean } = { flush: true }): Promise<void> {
    return this.chainLock.run(async () => {
      if (this.closed) return;
      this.closed = true;
      clearInterval(this.flushTimer);
      const resume = await this.gate.quiesce();
      this.gate.close();
      resume();
      try {
        if (options.flush) await this.chain.head.flush();
      } finally {
        await Promise.all(this.chain.layers.map((layer) => layer.close()));
      }
    });
  }

  /** Drops a replica this process has just created and could not finish (a failed clone). */
  private async discard(): Promise<void> {
    this.closed = true;
    clearInterval(this.flushTimer);
    this.gate.close();
    const heldBytes = this.allocatedBytes;
    await Promise.all(this.chain.layers.map((layer) => layer.close()));
    await rm(this.dir, { recursive: true, force: true });
    this.allocator.release(heldBytes);
  }

  private changeChain<T>(work: () => Promise<T>): Promise<T> {
    return this.chainLock.run(async () => {
      if (this.closed) throw new BlockIoError("ESHUTDOWN", `${this.dir}: the replica is closed`);
      return work();
    });
  }

  private async commit(manifest: Manifest): Promise<void> {
    await writeManifest(this.dir, manifest);
    this.manifest = manifest;
  }

  /**
   * Commits a manifest naming `layer`, created for this change, after `prepare` (which fills it).
   * On failure the layer's files and space are given back and the chain is as it was.
   */
  private async commitWithNewLayer(layer: Layer, manifest: Manifest, prepare?: () => Promise<void>) {
    try {
      await prepare?.();
      await this.commit(manifest);
    } catch (error) {
      const heldBytes = layer.map.dataBlocks * VOLUME_BLOCK_SIZE;
      await layer.close();
      await Layer.removeFiles(this.dir, layer.id);
      this.allocator.release(heldBytes);
      throw error;
    }
  }

  /** The chain position (1 = oldest) of a snapshot's layer. */
  private positionOf(snapshotId: string): number {
    const i = this.manifest.layers.findIndex((layer) => layer.snapshot?.id === snapshotId);
    if (i < 0) throw notFound(`snapshot ${snapshotId} of replica ${this.dir}`);
    return i + 1;
  }
}

function checkVolumeSize(sizeBytes: number): void {
  if (!Number.isInteger(sizeBytes) || sizeBytes <= 0 || sizeBytes % VOLUME_BLOCK_SIZE !== 0) {
    throw invalid(
      `a volume size must be a positive multiple of ${VOLUME_BLOCK_SIZE} bytes, not ${sizeBytes}`,
    );
  }
  if (sizeBytes > MAX_VOLUME_SIZE) throw invalid(`a volume holds at most ${MAX_VOLUME_SIZE} bytes`);
}
