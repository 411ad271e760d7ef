import { mkdir, statfs } from "node:fs/promises";
import type { PoolUsage } from "../core/model.js";
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

export class Pool {
  private constructor(readonly drives: Drive[]) {}

  static async open(specs: DriveSpec[]): Promise<Pool> {
    if (specs.length === 0) throw new Error("a pool needs at least one drive");
    const drives: Drive[] = [];
    for (const spec of specs) {
      await mkdir(spec.path, { recursive: true });
      let capacity = spec.capacityBytes;
      if (capacity === undefined) {
        const fs = await statfs(spec.path);
        capacity = fs.bavail * fs.bsize;
      }
      drives.push(new Drive(spec.path, capacity));
    }
    return new Pool(drives);
  }

  /** Where a new replica goes: the drive with the most free space. */
  pickDrive(): Drive {
    return this.drives.reduce((best, drive) => (drive.freeBytes > best.freeBytes ? drive : best));
  }

  usage(provisionedBytes: number): PoolUsage {
    const capacityBytes = this.drives.reduce((sum, d) => sum + d.capacityBytes, 0);
    const usedBytes = this.drives.reduce((sum, d) => sum + d.usedBytes, 0);
    return {
      capacityBytes,
      usedBytes,
      freeBytes: Math.max(0, capacityBytes - usedBytes),
      provisionedBytes,
      drives: this.drives.map((d) => ({
        path: d.path,
        capacityBytes: d.capacityBytes,
        usedBytes: d.usedBytes,
      })),
    };
  }
}
