import { mkdtemp, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { SpaceAllocator } from "../../agent/pool.js";
import { type CreateReplicaOptions, Replica } from "../../agent/store/replica.js";

export const BLOCK = 4096;
export const MiB = 1024 * 1024;
export const GiB = 1024 * MiB;

/** A pool with a fixed capacity that records what is reserved, like the agent's Drive. */
export class TestAllocator implements SpaceAllocator {
  used = 0;
  constructor(private readonly capacity = Number.MAX_SAFE_INTEGER) {}
  tryReserve(bytes: number): boolean {
    if (this.used + bytes > this.capacity) return false;
    this.used += bytes;
    return true;
  }
  adopt(bytes: number): void {
    this.used += bytes;
  }
  release(bytes: number): void {
    this.used -= bytes;
  }
}

/** A temporary directory removed by the returned cleanup. */
export async function tempDir(): Promise<{ path: string; cleanup: () => Promise<void> }> {
  const path = await mkdtemp(join(tmpdir(), "strata-store-"));
  return { path, cleanup: () => rm(path, { recursive: true, force: true }) };
}

export function createReplica(
  dir: string,
  sizeBytes: number,
  allocator: SpaceAllocator = new TestAllocator(),
  extra: Partial<CreateReplicaOptions> = {},
): Promise<Replica> {
  return Replica.create(dir, {
    volumeId: "vol-1",
    replicaId: "rep-1",
    sizeBytes,
    epoch: 1,
    allocator,
    ...extra,
  });
}

/** Deterministic pseudo-random numbers (mulberry32), so a failing run can be replayed. */
export function random(seed: number): { int(maxExclusive: number): number; bytes(length: number): Buffer } {
  let state = seed >>> 0;
  const next = () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  return {
    int: (maxExclusive) => Math.floor(next() * maxExclusive),
    bytes: (length) => {
      const buffer = Buffer.allocUnsafe(length);
      for (let i = 0; i < length; i++) buffer[i] = Math.floor(next() * 256);
      return buffer;
    },
  };
}

/** A buffer filled with one byte value, to recognise which write a block came from. */
export function filled(length: number, value: number): Buffer {
  return Buffer.alloc(length, value);
}

/** Bytes the filesystem has actually allocated for a file (st_blocks is in 512-byte units). */
export async function diskBytes(path: string): Promise<number> {
  return (await stat(path)).blocks * 512;
}

/** Compares a replica's whole volume (or a snapshot's view) with a model, in 1 MiB pieces. */
export async function expectSameBytes(
  readAt: (offset: number, length: number) => Promise<Buffer>,
  model: Buffer,
): Promise<void> {
  for (let offset = 0; offset < model.length; offset += MiB) {
    const length = Math.min(MiB, model.length - offset);
    const actual = await readAt(offset, length);
    if (!actual.equals(model.subarray(offset, offset + length))) {
      let at = 0;
      while (actual[at] === model[offset + at]) at++;
      throw new Error(
        `bytes differ at offset ${offset + at}: got ${actual[at]}, expected ${model[offset + at]}`,
      );
    }
  }
}
