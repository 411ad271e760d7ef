import { mkdir, open, rm, stat, statfs } from "node:fs/promises";
import { hostname } from "node:os";
import { join } from "node:path";
import { MAX_VOLUME_SIZE, type PoolUsage, VOLUME_BLOCK_SIZE } from "../core/model.js";
import { parseSize } from "../core/units.js";

/**
 * A drive is a filesystem the agent owns: locally a directory, in AWS an EBS volume formatted
 * XFS and mounted by the DaemonSet (as Longhorn does with its disks). The pool does the space
 * accounting across drives: every block a replica allocates is reserved here first, so a full
 * pool fails writes with ENOSPC before the filesystem underneath is ever full.
 */
export interface SpaceAllocator {
  /** Reserves space for new blocks; false when the drive is full. */
  tryReserve(bytes: number): boolean;
  /** Accounts for space that already exists on the drive (a replica being reopened). */
  adopt(bytes: number): void;
  release(bytes: number): void;
}

export class Drive implements SpaceAllocator {
  private used = 0;

  constructor(
    readonly path: string,
    readonly capacityBytes: number,
  ) {}

  get usedBytes(): number {
    return this.used;
  }

  get freeBytes(): number {
    return Math.max(0, this.capacityBytes - this.used);
  }

  tryReserve(bytes: number): boolean {
    if (this.used + bytes > this.capacityBytes) return false;
    this.used += bytes;
    return true;
  }

  adopt(bytes: number): void {
    this.used += bytes;
  }

  release(bytes: number): void {
    this.used = Math.max(0, this.used - bytes);
  }
}

export interface DriveSpec {
  path: string;
  /** Omitted: what the filesystem holding the drive has free (plus nothing already used by us). */
  capacityBytes?: number;
}

/** Parses a `--drive PATH[:SIZE]` argument, e.g. "/mnt/ebs0:100GiB". */
export function parseDriveSpec(text: string): DriveSpec {
  const colon = text.lastIndexOf(":");
  if (colon <= 0) return { path: text };
  return { path: text.slice(0, colon), capacityBytes: parseSize(text.slice(colon + 1)) };
}

/** What the filesystems under a pool allow, probed once when it opens. */
interface PoolFilesystem {
  /** The drives' filesystems, by host and device: pools with the same id share one filesystem's space. */
  id: string;
  /** A volume must be smaller than this; absent when every volume size fits. */
  fileSizeLimitBytes?: number;
}

export class Pool {
  private constructor(
    readonly drives: Drive[],
    private readonly filesystem: PoolFilesystem,
  ) {}

  static async open(specs: DriveSpec[]): Promise<Pool> {
    if (specs.length === 0) throw new Error("a pool needs at least one drive");
    const drives: Drive[] = [];
    const devices = new Set<string>();
    const limits: number[] = [];
    for (const spec of specs) {
      await mkdir(spec.path, { recursive: true });
      let capacity = spec.capacityBytes;
      if (capacity === undefined) {
        const fs = await statfs(spec.path);
        capacity = fs.bavail * fs.bsize;
      }
      drives.push(new Drive(spec.path, capacity));
      // A device number names a filesystem on one machine only: another node's 2049 is another disk.
      devices.add(`${hostname()}:${(await stat(spec.path)).dev}`);
      const limit = await probeFileSizeLimit(spec.path);
      if (limit !== undefined) limits.push(limit);
    }
    // A replica may land on any drive, so the most restrictive filesystem sets the limit.
    const fileSizeLimitBytes = limits.length === 0 ? undefined : Math.min(...limits);
    return new Pool(drives, {
      id: [...devices].sort().join("+"),
      ...(fileSizeLimitBytes === undefined ? {} : { fileSizeLimitBytes }),
    });
  }

  /** Where a new replica goes: the drive with the most free space. */
  pickDrive(): Drive {
    return this.drives.reduce((best, drive) => (drive.freeBytes > best.freeBytes ? drive : best));
  }

  usage(provisionedBytes: number): PoolUsage {
    const capacityBytes = this.drives.reduce((sum, d) => sum + d.capacityBytes, 0);
    const usedBytes = this.drives.reduce((sum, d) => sum + d.usedBytes, 0);
    const { id, fileSizeLimitBytes } = this.filesystem;
    return {
      capacityBytes,
      usedBytes,
      freeBytes: Math.max(0, capacityBytes - usedBytes),
      provisionedBytes,
      ...(fileSizeLimitBytes === undefined ? {} : { fileSizeLimitBytes }),
      filesystemId: id,
      drives: this.drives.map((d) => ({
        path: d.path,
        capacityBytes: d.capacityBytes,
        usedBytes: d.usedBytes,
      })),
    };
  }
}

/**
 * The smallest whole number of blocks the filesystem under `dir` refuses as a file size (EFBIG),
 * or undefined when it takes the largest volume. A volume's layer file is as long as the volume,
 * so ext4 with 4 KiB blocks (files under 16 TiB) cannot hold a 16 TiB volume. Found by growing a
 * sparse file, which writes no data: a few dozen truncates, once per drive.
 */
export async function probeFileSizeLimit(dir: string): Promise<number | undefined> {
  const path = join(dir, ".file-size-probe");
  const file = await open(path, "w");
  const fits = async (bytes: number) => {
    try {
      await file.truncate(bytes);
      return true;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === "EFBIG") return false;
      throw error;
    }
  };
  try {
    if (await fits(MAX_VOLUME_SIZE)) return undefined;
    // Whole blocks: `fitting` fits, `refused` does not.
    let fitting = 0;
    let refused = MAX_VOLUME_SIZE / VOLUME_BLOCK_SIZE;
    while (refused - fitting > 1) {
      const middle = Math.floor((fitting + refused) / 2);
      if (await fits(middle * VOLUME_BLOCK_SIZE)) fitting = middle;
      else refused = middle;
    }
    return refused * VOLUME_BLOCK_SIZE;
  } finally {
    await file.close();
    await rm(path, { force: true });
  }
}
