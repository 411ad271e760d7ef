import { readdir } from "node:fs/promises";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import type { Replica } from "../../agent/store/replica.js";
import { BLOCK, createReplica, diskBytes, filled, GiB, MiB, TestAllocator, tempDir } from "./helpers.js";

const NO_FUA = { fua: false };

async function directoryDiskBytes(dir: string): Promise<number> {
  let total = 0;
  for (const file of await readdir(dir)) total += await diskBytes(join(dir, file));
  return total;
}

describe("thin provisioning", () => {
  let dir: Awaited<ReturnType<typeof tempDir>>;
  let allocator: TestAllocator;
  let replica: Replica;

  beforeEach(async () => {
    dir = await tempDir();
    allocator = new TestAllocator();
    replica = await createReplica(dir.path, 64 * GiB, allocator);
  });
  afterEach(async () => {
    await replica.close();
    await dir.cleanup();
  });

  it("a fresh 64 GiB replica takes almost no disk and allocates nothing", async () => {
    expect(replica.allocatedBytes).toBe(0);
    expect(allocator.used).toBe(0);
    // The map header and replica.json: a few file-system blocks, nothing proportional to the size.
    expect(await directoryDiskBytes(dir.path)).toBeLessThan(64 * 1024);
    expect([...replica.allocatedRuns()]).toEqual([]);
  });

  it("writes far apart allocate only what they write and reads elsewhere are zeros", async () => {
    await replica.write(0, filled(MiB, 1), NO_FUA);
    await replica.write(63 * GiB, filled(MiB, 2), NO_FUA);
    await replica.flush();
    expect(replica.allocatedBytes).toBe(2 * MiB);
    expect(allocator.used).toBe(2 * MiB);
    expect(await directoryDiskBytes(dir.path)).toBeLessThan(3 * MiB);
    expect((await replica.read(32 * GiB, MiB)).equals(Buffer.alloc(MiB))).toBe(true);
    expect((await replica.read(63 * GiB, MiB)).equals(filled(MiB, 2))).toBe(true);
    expect([...replica.allocatedRuns()]).toEqual([
      { offset: 0, length: MiB },
      { offset: 63 * GiB, length: MiB },
    ]);
  });

  it("TRIM gives space back to the pool and the file system", async () => {
    await replica.write(GiB, filled(8 * MiB, 3), NO_FUA);
    await replica.flush();
    const dataFile = join(dir.path, "layer-1.data");
    expect(await diskBytes(dataFile)).toBeGreaterThanOrEqual(8 * MiB);
    await replica.trim(GiB + MiB, 6 * MiB, NO_FUA);
    await replica.flush();
    expect(replica.allocatedBytes).toBe(2 * MiB);
    expect(allocator.used).toBe(2 * MiB);
    expect(await diskBytes(dataFile)).toBeLessThanOrEqual(2 * MiB + 64 * 1024);
    expect((await replica.read(GiB + MiB, 6 * MiB)).equals(Buffer.alloc(6 * MiB))).toBe(true);
    expect((await replica.read(GiB, MiB)).equals(filled(MiB, 3))).toBe(true);
    expect([...replica.allocatedRuns()]).toEqual([
      { offset: GiB, length: MiB },
      { offset: GiB + 7 * MiB, length: MiB },
    ]);
  });

  it("write-zeroes over data held by a snapshot reads zeros while the snapshot keeps the data", async () => {
    await replica.write(5 * GiB, filled(4 * BLOCK, 8), NO_FUA);
    const snapshot = await replica.snapshot("before-zero");
    await replica.write(5 * GiB + BLOCK, filled(BLOCK, 9), NO_FUA);
    await replica.writeZeroes(5 * GiB, 4 * BLOCK, { fua: false, mayPunch: false });
    expect((await replica.read(5 * GiB, 4 * BLOCK)).equals(Buffer.alloc(4 * BLOCK))).toBe(true);
    expect((await replica.readSnapshot(snapshot.id, 5 * GiB, 4 * BLOCK)).equals(filled(4 * BLOCK, 8))).toBe(
      true,
    );
    // The head holds only zero marks: the space is the snapshot's 4 blocks.
    expect(replica.allocatedBytes).toBe(4 * BLOCK);
    expect(allocator.used).toBe(4 * BLOCK);
    expect([...replica.allocatedRuns()]).toEqual([]);
  });

  it("TRIM of a block only the head defines leaves nothing behind (absent, not a zero mark)", async () => {
    await replica.write(0, filled(BLOCK, 1), NO_FUA);
    await replica.snapshot("s");
    await replica.write(BLOCK, filled(BLOCK, 2), NO_FUA);
    await replica.trim(0, 2 * BLOCK, NO_FUA);
    expect((await replica.read(0, 2 * BLOCK)).equals(Buffer.alloc(2 * BLOCK))).toBe(true);
    expect(replica.allocatedBytes).toBe(BLOCK);
    // Writing block 1 again allocates again: it was given back.
    await replica.write(BLOCK, filled(BLOCK, 3), NO_FUA);
    expect(replica.allocatedBytes).toBe(2 * BLOCK);
  });
});
