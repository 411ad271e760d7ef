import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { Replica } from "../../agent/store/replica.js";
import { BLOCK, createReplica, filled, TestAllocator, tempDir } from "./helpers.js";

const NO_FUA = { fua: false };
const VOLUME = 64 * BLOCK;
const CAPACITY_BLOCKS = 10;

describe("space accounting", () => {
  let dir: Awaited<ReturnType<typeof tempDir>>;
  let allocator: TestAllocator;
  let replica: Replica;

  beforeEach(async () => {
    dir = await tempDir();
    allocator = new TestAllocator(CAPACITY_BLOCKS * BLOCK);
    replica = await createReplica(dir.path, VOLUME, allocator);
  });
  afterEach(async () => {
    await replica.close();
    await dir.cleanup();
  });

  it("fails writes with ENOSPC when the pool is full and keeps what was written", async () => {
    await replica.write(0, filled(8 * BLOCK, 1), NO_FUA);
    // Three new blocks do not fit in the two left: the whole write fails, nothing of it lands.
    await expect(replica.write(7 * BLOCK, filled(4 * BLOCK, 2), NO_FUA)).rejects.toMatchObject({
      name: "BlockIoError",
      errno: "ENOSPC",
    });
    expect((await replica.read(0, 12 * BLOCK)).equals(Buffer.alloc(12 * BLOCK).fill(1, 0, 8 * BLOCK))).toBe(
      true,
    );
    expect(allocator.used).toBe(8 * BLOCK);
    expect(replica.allocatedBytes).toBe(8 * BLOCK);

    // An unaligned write needing two new blocks fails the same way.
    await replica.write(8 * BLOCK, filled(2 * BLOCK, 3), NO_FUA);
    await expect(replica.write(10 * BLOCK + 100, filled(BLOCK, 4), NO_FUA)).rejects.toMatchObject({
      errno: "ENOSPC",
    });
    expect((await replica.read(10 * BLOCK, 2 * BLOCK)).equals(Buffer.alloc(2 * BLOCK))).toBe(true);

    // Overwriting blocks the head already holds needs no space, even when full.
    await replica.write(BLOCK + 10, filled(50, 5), NO_FUA);
    const expected = Buffer.alloc(10 * BLOCK)
      .fill(1, 0, 8 * BLOCK)
      .fill(3, 8 * BLOCK)
      .fill(5, BLOCK + 10, BLOCK + 60);
    expect((await replica.read(0, 10 * BLOCK)).equals(expected)).toBe(true);

    // TRIM gives blocks back, so writes fit again.
    await replica.trim(0, 2 * BLOCK, NO_FUA);
    expect(allocator.used).toBe(8 * BLOCK);
    await replica.write(20 * BLOCK, filled(2 * BLOCK, 6), NO_FUA);
    expect(allocator.used).toBe(10 * BLOCK);
  });

  it("after a snapshot, overwrites need new space; deleting the snapshot gives it back", async () => {
    await replica.write(0, filled(6 * BLOCK, 1), NO_FUA);
    const snapshot = await replica.snapshot("s");
    await replica.write(0, filled(4 * BLOCK, 2), NO_FUA);
    await expect(replica.write(4 * BLOCK, filled(BLOCK, 3), NO_FUA)).rejects.toMatchObject({
      errno: "ENOSPC",
    });
    expect(replica.exclusiveBytes(snapshot.id)).toBe(4 * BLOCK);
    await replica.deleteSnapshot(snapshot.id);
    expect(allocator.used).toBe(6 * BLOCK);
    expect(replica.allocatedBytes).toBe(6 * BLOCK);
    await replica.write(4 * BLOCK, filled(BLOCK, 3), NO_FUA);
    const expected = Buffer.alloc(6 * BLOCK)
      .fill(2, 0, 4 * BLOCK)
      .fill(3, 4 * BLOCK, 5 * BLOCK)
      .fill(1, 5 * BLOCK);
    expect((await replica.read(0, 6 * BLOCK)).equals(expected)).toBe(true);
  });

  it("reopening adopts the replica's space even beyond capacity, and destroy gives it back", async () => {
    await replica.write(0, filled(9 * BLOCK, 1), NO_FUA);
    await replica.close();
    const small = new TestAllocator(BLOCK);
    replica = await Replica.open(dir.path, { allocator: small });
    expect(small.used).toBe(9 * BLOCK);
    await expect(replica.write(30 * BLOCK, filled(BLOCK, 2), NO_FUA)).rejects.toMatchObject({
      errno: "ENOSPC",
    });
    await replica.close();
    await Replica.destroy(dir.path, small);
    expect(small.used).toBe(0);
    replica = await createReplica(dir.path, VOLUME, allocator);
  });

  it("a clone that does not fit fails with ENOSPC and leaves nothing behind", async () => {
    await replica.write(0, filled(6 * BLOCK, 1), NO_FUA);
    const snapshot = await replica.snapshot("s");
    const cloneDir = `${dir.path}-clone`;
    await expect(
      replica.cloneSnapshot(snapshot.id, cloneDir, { volumeId: "v2", replicaId: "r2", epoch: 1, allocator }),
    ).rejects.toMatchObject({ errno: "ENOSPC" });
    expect(allocator.used).toBe(6 * BLOCK);
    await expect(Replica.open(cloneDir, { allocator })).rejects.toThrow(/replica\.json/);
  });
});
