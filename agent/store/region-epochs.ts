/**
 * Dirty-region tracking for resync (DESIGN: Data path): for every region of the volume, the
 * newest epoch at which this replica changed it. A replica that left the set at epoch E and comes
 * back is made identical by copying only the regions some replica changed at an epoch ≥ E: the
 * in-sync replica's changes since then, plus the returning replica's own changes at E that may
 * never have reached the others (writes in flight when it left).
 *
 * The marks are written ahead of the data: a mutation waits until the marks of its regions are
 * durable before it touches a block, so after a crash no block can have changed without its region
 * saying so. Marks only grow, so only a region's first change in each epoch pays for that write;
 * concurrent first changes share one write-out (group commit). Every change since the replica was
 * created is marked; changes made without a mutation (a clone's initial copy, a revert, a map
 * rebuilt after damage) mark the whole volume, which makes the next resync copy everything it
 * holds — more than needed, never less.
 *
 * File (regions.map): a 16-byte header — magic "STRG", format version (u16 LE), log2 of the
 * region size (u8), 9 bytes reserved — then one float64 LE per region: its epoch + 1, so a region
 * never changed is 0 and a new volume's map is a hole (exact up to 2^53, like every epoch).
 */
import { open, readFile } from "node:fs/promises";
import { join } from "node:path";
import type { ByteRange } from "../block-device.js";
import { replaceFileAtomic } from "../durable-file.js";
import type { Logger } from "../log.js";

export const REGIONS_FILE = "regions.map";
const MAGIC = 0x47525453; // "STRG" read as a little-endian u32
const FORMAT_VERSION = 1;
const HEADER_BYTES = 16;
const ENTRY_BYTES = 8;
/** Small enough that a resync after a short absence copies little, big enough to keep marks rare. */
const MIN_REGION_SHIFT = 20; // 1 MiB
/** Bounds the map at 512 KiB whatever the volume size; bigger volumes get bigger regions. */
const MAX_REGIONS = 65_536;

/** Marks of regions never changed: below every epoch. */
const NEVER = -1;

export class RegionEpochs {
  /** What the newest mutations asked for; what is on disk is `durable` (never ahead of it). */
  private wanted: Float64Array;
  private durable: Float64Array;
  private readonly pending = new Set<number>();
  /** File writes run one at a time, in order; `queued` is the write-out not started yet. */
  private tail: Promise<void> = Promise.resolve();
  private queued: Promise<void> | undefined;

  private constructor(
    private readonly path: string,
    private regionShift: number,
    epochs: Float64Array,
  ) {
    this.wanted = epochs;
    this.durable = epochs.slice();
  }

  /** A map for a new replica of `sizeBytes`, every region unchanged. */
  static async create(dir: string, sizeBytes: number): Promise<RegionEpochs> {
    const shift = regionShiftFor(sizeBytes);
    const map = new RegionEpochs(join(dir, REGIONS_FILE), shift, unchanged(sizeBytes, shift));
    await map.rewrite();
    return map;
  }

  /**
   * Opens the map of an existing replica at `epoch`. A missing or damaged map (a replica made
   * before tracking, a torn write) is replaced by one marking every region changed at `epoch`:
   * the data is intact, only the next resync copies more.
   */
  static async open(dir: string, sizeBytes: number, epoch: number, log: Logger): Promise<RegionEpochs> {
    const path = join(dir, REGIONS_FILE);
    let bytes: Buffer | undefined;
    try {
      bytes = await readFile(path);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== "ENOENT") throw error;
    }
    const problem = bytes === undefined ? "missing" : checkFile(bytes, sizeBytes);
    if (problem === undefined) {
      const shift = bytes!.readUInt8(6);
      const epochs = new Float64Array(regionCount(sizeBytes, shift));
      for (let i = 0; i < epochs.length; i++) epochs[i] = readEntry(bytes!, i);
      return new RegionEpochs(path, shift, epochs);
    }
    log.warn({ path, problem }, "dirty-region map unusable; every region counts as changed");
    const map = await RegionEpochs.create(dir, sizeBytes);
    await map.markAll(epoch);
    return map;
  }

  get regionBytes(): number {
    return 2 ** this.regionShift;
  }

  /**
   * Marks [offset, offset + length) changed at `epoch`. Returns undefined when the marks on disk
   * already say so (the common case: no wait at all), else a promise settling once they are durable.
   */
  mark(offset: number, length: number, epoch: number): Promise<void> | undefined {
    if (length <= 0) return undefined;
    const first = Math.floor(offset / this.regionBytes);
    // A range past the volume is refused by the write itself; it marks nothing.
    const last = Math.min(Math.floor((offset + length - 1) / this.regionBytes), this.wanted.length - 1);
    let durable = true;
    for (let region = first; region <= last; region++) {
      if (this.durable[region]! >= epoch) continue;
      durable = false;
      if (this.wanted[region]! < epoch) this.wanted[region] = epoch;
      this.pending.add(region);
    }
    return durable ? undefined : this.writeOut();
  }

  /** Marks every region changed at `epoch` (a change made below the mutations, e.g. a revert). */
  markAll(epoch: number): Promise<void> {
    return this.enqueue(async () => {
      for (let i = 0; i < this.wanted.length; i++) this.wanted[i] = Math.max(this.wanted[i]!, epoch);
      await this.rewrite();
    });
  }

  /** The byte ranges of regions changed at `since` or later, merged, in order. */
  changedSince(since: number, sizeBytes: number): ByteRange[] {
    const runs: ByteRange[] = [];
    const size = this.regionBytes;
    for (let region = 0; region < this.wanted.length; region++) {
      if (this.wanted[region]! < since) continue;
      const offset = region * size;
      const length = Math.min(size, sizeBytes - offset);
      const previous = runs[runs.length - 1];
      if (previous !== undefined && previous.offset + previous.length === offset) previous.length += length;
      else runs.push({ offset, length });
    }
    return runs;
  }

  /**
   * Covers a volume grown to `sizeBytes`: new regions are unchanged (they read as zeros on every
   * replica). Past MAX_REGIONS, regions double in size, each keeping the newer of its halves'
   * marks (and the older of their durable ones, so no mark is taken as written before it is).
   */
  grow(sizeBytes: number): Promise<void> {
    return this.enqueue(async () => {
      const shift = regionShiftFor(sizeBytes, this.regionShift);
      const steps = shift - this.regionShift;
      this.wanted = resized(coarsen(this.wanted, steps, Math.max), sizeBytes, shift);
      this.durable = resized(coarsen(this.durable, steps, Math.min), sizeBytes, shift);
      const pending = [...this.pending];
      this.pending.clear();
      for (const region of pending) this.pending.add(region >> steps);
      this.regionShift = shift;
      await this.rewrite();
    });
  }

  private enqueue(work: () => Promise<void>): Promise<void> {
    const run = this.tail.catch(() => {}).then(work);
    this.tail = run;
    return run;
  }

  /** Writes the pending marks and syncs them, behind the file write in progress if there is one. */
  private writeOut(): Promise<void> {
    if (this.queued !== undefined) return this.queued;
    const run = this.enqueue(async () => {
      // From here on, new marks need the next write-out.
      this.queued = undefined;
      await this.writePending();
    });
    this.queued = run;
    return run;
  }

  private async writePending(): Promise<void> {
    const regions = [...this.pending];
    this.pending.clear();
    const values = regions.map((region) => this.wanted[region]!);
    const entry = Buffer.alloc(ENTRY_BYTES);
    try {
      const handle = await open(this.path, "r+");
      try {
        for (let i = 0; i < regions.length; i++) {
          entry.writeDoubleLE(values[i]! + 1);
          await handle.write(entry, 0, ENTRY_BYTES, HEADER_BYTES + regions[i]! * ENTRY_BYTES);
        }
        await handle.datasync();
      } finally {
        await handle.close();
      }
    } catch (error) {
      // Not durable: the next mutation of these regions must try again.
      for (const region of regions) this.pending.add(region);
      throw error;
    }
    regions.forEach((region, i) => {
      if (this.durable[region]! < values[i]!) this.durable[region] = values[i]!;
    });
  }

  /**
   * Replaces the whole file atomically with the wanted marks as they are now; regions never
   * changed are left as holes.
   */
  private async rewrite(): Promise<void> {
    const written = this.wanted.slice();
    await replaceFileAtomic(this.path, async (file) => {
      const header = Buffer.alloc(HEADER_BYTES);
      header.writeUInt32LE(MAGIC, 0);
      header.writeUInt16LE(FORMAT_VERSION, 4);
      header.writeUInt8(this.regionShift, 6);
      await file.write(header, 0, HEADER_BYTES, 0);
      for (let first = 0; first < written.length; ) {
        if (written[first] === NEVER) {
          first++;
          continue;
        }
        let end = first;
        while (end < written.length && written[end] !== NEVER) end++;
        const run = Buffer.alloc((end - first) * ENTRY_BYTES);
        for (let i = first; i < end; i++) run.writeDoubleLE(written[i]! + 1, (i - first) * ENTRY_BYTES);
        await file.write(run, 0, run.length, HEADER_BYTES + first * ENTRY_BYTES);
        first = end;
      }
      await file.truncate(HEADER_BYTES + written.length * ENTRY_BYTES);
    });
    this.durable = written;
  }
}

function regionShiftFor(sizeBytes: number, atLeast = MIN_REGION_SHIFT): number {
  let shift = atLeast;
  while (regionCount(sizeBytes, shift) > MAX_REGIONS) shift++;
  return shift;
}

function regionCount(sizeBytes: number, shift: number): number {
  return Math.ceil(sizeBytes / 2 ** shift);
}

function unchanged(sizeBytes: number, shift: number): Float64Array {
  return new Float64Array(regionCount(sizeBytes, shift)).fill(NEVER);
}

/** Merges each 2^steps neighbouring regions into one with `combine`. */
function coarsen(
  epochs: Float64Array,
  steps: number,
  combine: (a: number, b: number) => number,
): Float64Array {
  if (steps === 0) return epochs;
  const coarser = new Float64Array(Math.ceil(epochs.length / 2 ** steps));
  for (let i = 0; i < epochs.length; i++) {
    const j = i >> steps;
    coarser[j] = i % 2 ** steps === 0 ? epochs[i]! : combine(coarser[j]!, epochs[i]!);
  }
  return coarser;
}

/** `epochs` extended (with unchanged regions) to cover `sizeBytes`. */
function resized(epochs: Float64Array, sizeBytes: number, shift: number): Float64Array {
  const grown = unchanged(sizeBytes, shift);
  grown.set(epochs.subarray(0, Math.min(epochs.length, grown.length)));
  return grown;
}

/** Why `bytes` is not a map for a volume of `sizeBytes`, or undefined when it is. */
function checkFile(bytes: Buffer, sizeBytes: number): string | undefined {
  if (bytes.length < HEADER_BYTES || bytes.readUInt32LE(0) !== MAGIC) return "not a dirty-region map";
  if (bytes.readUInt16LE(4) !== FORMAT_VERSION)
    return `format version ${bytes.readUInt16LE(4)} is not ${FORMAT_VERSION}`;
  const shift = bytes.readUInt8(6);
  if (shift < MIN_REGION_SHIFT || shift > 46) return `region size 2^${shift} is out of range`;
  const expected = HEADER_BYTES + regionCount(sizeBytes, shift) * ENTRY_BYTES;
  if (bytes.length !== expected)
    return `${bytes.length} bytes where a ${sizeBytes}-byte volume needs ${expected}`;
  for (let i = 0; i < (bytes.length - HEADER_BYTES) / ENTRY_BYTES; i++) {
    const epoch = readEntry(bytes, i);
    if (!Number.isSafeInteger(epoch) || epoch < NEVER)
      return `region ${i}'s epoch (${epoch}) is not an epoch`;
  }
  return undefined;
}

function readEntry(bytes: Buffer, region: number): number {
  return bytes.readDoubleLE(HEADER_BYTES + region * ENTRY_BYTES) - 1;
}
