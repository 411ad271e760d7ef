import { readFile, stat, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { log } from "../../agent/log.js";
import { REGIONS_FILE, RegionEpochs } from "../../agent/store/region-epochs.js";
import { Replica } from "../../agent/store/replica.js";
import { createReplica, filled, GiB, MiB, TestAllocator, tempDir } from "./helpers.js";

const NO_FUA = { fua: false };

describe("dirty-region tracking", () => {
  let dir: Awaited<ReturnType<typeof tempDir>>;

  beforeEach(async () => {
    dir = await tempDir();
  });
  afterEach(async () => {
    await dir.cleanup();
  });

  it("marks the regions each mutation touches with the replica's epoch, and keeps them across a reopen", async () => {
    let replica: Replica = await createReplica(dir.path, 64 * MiB);
    try {
      expect(replica.changedSince(0)).toEqual([]);
      await replica.write(0, filled(4096, 1), NO_FUA);
      await replica.setEpoch(2);
      await replica.write(10 * MiB + 4096, filled(8192, 2), NO_FUA);
      await replica.trim(20 * MiB, 2 * MiB, NO_FUA);
      await replica.setEpoch(5);
      await replica.writeZeroes(63 * MiB, MiB, { fua: false, mayPunch: true });

      expect(replica.changedSince(0)).toEqual([
        { offset: 0, length: MiB },
        { offset: 10 * MiB, length: MiB },
        { offset: 20 * MiB, length: 2 * MiB },
        { offset: 63 * MiB, length: MiB },
      ]);
      expect(replica.changedSince(2)).toEqual([
        { offset: 10 * MiB, length: MiB },
        { offset: 20 * MiB, length: 2 * MiB },
        { offset: 63 * MiB, length: MiB },
      ]);
      expect(replica.changedSince(5)).toEqual([{ offset: 63 * MiB, length: MiB }]);
      expect(replica.changedSince(6)).toEqual([]);
    } finally {
      await replica.close();
    }
    replica = await Replica.open(dir.path, { allocator: new TestAllocator() });
    try {
      expect(replica.changedSince(2).map((run) => run.offset)).toEqual([10 * MiB, 20 * MiB, 63 * MiB]);
    } finally {
      await replica.close();
    }
  });

  it("a newer mark on a region replaces the older one; a write inside the epoch already marked waits for nothing", async () => {
    const map = await RegionEpochs.create(dir.path, 8 * MiB);
    const first = map.mark(MiB, 10, 3);
    expect(first).toBeInstanceOf(Promise);
    await first;
    expect(map.mark(MiB + 100, 10, 3)).toBeUndefined();
    expect(map.mark(MiB + 100, 10, 2)).toBeUndefined();
    await map.mark(MiB, MiB + 1, 4);
    expect(map.changedSince(4, 8 * MiB)).toEqual([{ offset: MiB, length: 2 * MiB }]);
    const reopened = await RegionEpochs.open(dir.path, 8 * MiB, 9, log);
    expect(reopened.changedSince(3, 8 * MiB)).toEqual([{ offset: MiB, length: 2 * MiB }]);
    expect(reopened.changedSince(5, 8 * MiB)).toEqual([]);
  });

  it("concurrent first writes to many regions are all durable when each resolves", async () => {
    const map = await RegionEpochs.create(dir.path, 64 * MiB);
    await Promise.all(Array.from({ length: 64 }, (_, i) => map.mark(i * MiB, 1, 7)));
    const reopened = await RegionEpochs.open(dir.path, 64 * MiB, 7, log);
    expect(reopened.changedSince(7, 64 * MiB)).toEqual([{ offset: 0, length: 64 * MiB }]);
  });

  it("a damaged or missing map counts every region as changed at the replica's epoch", async () => {
    const map = await RegionEpochs.create(dir.path, 4 * MiB);
    await map.mark(0, 1, 2);
    const path = join(dir.path, REGIONS_FILE);
    const bytes = await readFile(path);
    bytes.writeDoubleLE(Number.NaN, 16 + 8);
    await writeFile(path, bytes);
    const repaired = await RegionEpochs.open(dir.path, 4 * MiB, 6, log);
    expect(repaired.changedSince(6, 4 * MiB)).toEqual([{ offset: 0, length: 4 * MiB }]);
    expect(repaired.changedSince(7, 4 * MiB)).toEqual([]);

    const other = await tempDir();
    try {
      const fresh = await RegionEpochs.open(other.path, 3 * MiB, 4, log);
      expect(fresh.changedSince(4, 3 * MiB)).toEqual([{ offset: 0, length: 3 * MiB }]);
    } finally {
      await other.cleanup();
    }
  });

  it("a big volume's map stays small and sparse; growing past its region count coarsens without losing a mark", async () => {
    const map = await RegionEpochs.create(dir.path, 64 * GiB);
    expect(map.regionBytes).toBe(MiB);
    const file = join(dir.path, REGIONS_FILE);
    expect((await stat(file)).blocks * 512).toBeLessThan(64 * 1024);
    await map.mark(5 * MiB, 1, 3);
    await map.grow(256 * GiB);
    expect(map.regionBytes).toBe(4 * MiB);
    expect(map.changedSince(3, 256 * GiB)).toEqual([{ offset: 4 * MiB, length: 4 * MiB }]);
    expect(map.mark(6 * MiB, 1, 3)).toBeUndefined();
    const reopened = await RegionEpochs.open(dir.path, 256 * GiB, 3, log);
    expect(reopened.changedSince(3, 256 * GiB)).toEqual([{ offset: 4 * MiB, length: 4 * MiB }]);
  });

  it("a revert marks every region: what it changed is not known region by region", async () => {
    const replica = await createReplica(dir.path, 8 * MiB);
    try {
      await replica.write(0, filled(4096, 1), NO_FUA);
      const snapshot = await replica.snapshot("s");
      await replica.setEpoch(3);
      await replica.revert(snapshot.id);
      expect(replica.changedSince(3)).toEqual([{ offset: 0, length: 8 * MiB }]);
    } finally {
      await replica.close();
    }
  });
});
