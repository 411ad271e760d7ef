import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { Replica, type SnapshotInfo } from "../../agent/store/replica.js";
import {
  BLOCK,
  createReplica,
  expectSameBytes,
  filled,
  GiB,
  random,
  TestAllocator,
  tempDir,
} from "./helpers.js";

const NO_FUA = { fua: false };
const VOLUME = 512 * 1024;

interface Frozen {
  info: SnapshotInfo;
  model: Buffer;
}

/** Applies random writes, zeroes and trims of whole and partial blocks to the replica and a model. */
async function churn(replica: Replica, model: Buffer, rng: ReturnType<typeof random>, operations: number) {
  for (let i = 0; i < operations; i++) {
    const offset = rng.int(2) === 0 ? rng.int(model.length / BLOCK) * BLOCK : rng.int(model.length);
    const length = Math.min(model.length - offset, 1 + rng.int(6 * BLOCK));
    const op = rng.int(8);
    if (op < 6) {
      const data = rng.bytes(length);
      await replica.write(offset, data, NO_FUA);
      data.copy(model, offset);
    } else {
      await replica.writeZeroes(offset, length, { fua: false, mayPunch: true });
      model.fill(0, offset, offset + length);
    }
  }
}

async function expectAllViews(replica: Replica, head: Buffer, frozen: readonly Frozen[]) {
  await expectSameBytes((o, l) => replica.read(o, l), head);
  for (const { info, model } of frozen) {
    await expectSameBytes((o, l) => replica.readSnapshot(info.id, o, l), model);
  }
  expect(replica.snapshots().map((s) => s.id)).toEqual(frozen.map((f) => f.info.id));
}

describe("snapshots", () => {
  let dir: Awaited<ReturnType<typeof tempDir>>;
  let allocator: TestAllocator;
  let replica: Replica;

  beforeEach(async () => {
    dir = await tempDir();
    allocator = new TestAllocator();
    replica = await createReplica(dir.path, VOLUME, allocator);
  });
  afterEach(async () => {
    await replica.close();
    await dir.cleanup();
  });

  /** Takes `count` snapshots with random changes between them; returns the models. */
  async function buildChain(count: number, seed: number, head: Buffer): Promise<Frozen[]> {
    const rng = random(seed);
    const frozen: Frozen[] = [];
    for (let i = 0; i < count; i++) {
      await churn(replica, head, rng, 12);
      frozen.push({ info: await replica.snapshot(`snap-${i}`), model: Buffer.from(head) });
    }
    await churn(replica, head, rng, 12);
    return frozen;
  }

  it("stay frozen while the head changes and survive a reopen", async () => {
    const head = Buffer.alloc(VOLUME);
    const frozen = await buildChain(5, 11, head);
    await expectAllViews(replica, head, frozen);
    expect(frozen.map((f) => f.info.name)).toEqual(["snap-0", "snap-1", "snap-2", "snap-3", "snap-4"]);
    expect(allocator.used).toBe(replica.allocatedBytes);
    await replica.close();
    const reopenedAllocator = new TestAllocator();
    replica = await Replica.open(dir.path, { allocator: reopenedAllocator });
    await expectAllViews(replica, head, frozen);
    expect(reopenedAllocator.used).toBe(replica.allocatedBytes);
  });

  it("supports 130 snapshots, then deleting them in mixed orders keeps every other view", async () => {
    const head = Buffer.alloc(VOLUME);
    const frozen = await buildChain(130, 22, head);
    expect(replica.snapshots()).toHaveLength(130);
    await expectAllViews(replica, head, frozen);

    const rng = random(23);
    // The one under the head, the oldest, then random middles, checking every view each time.
    const order = [frozen.length - 1, 0];
    while (order.length < 20) {
      const i = 1 + rng.int(frozen.length - 3 - order.length);
      order.push(i);
    }
    for (const i of order) {
      const [victim] = frozen.splice(Math.min(i, frozen.length - 1), 1);
      const freed = replica.exclusiveBytes(victim!.info.id);
      const before = replica.allocatedBytes;
      await replica.deleteSnapshot(victim!.info.id);
      expect(replica.allocatedBytes).toBe(before - freed);
      expect(allocator.used).toBe(replica.allocatedBytes);
      await expectAllViews(replica, head, frozen);
    }

    // The chain on disk is the same after a reopen.
    await replica.close();
    replica = await Replica.open(dir.path, { allocator: new TestAllocator() });
    await expectAllViews(replica, head, frozen);
  });

  it("deleting every snapshot leaves the head intact and its space exact", async () => {
    const head = Buffer.alloc(VOLUME);
    const frozen = await buildChain(6, 33, head);
    for (const victim of [frozen[2]!, frozen[5]!, frozen[0]!, frozen[4]!, frozen[1]!, frozen[3]!]) {
      await replica.deleteSnapshot(victim.info.id);
      frozen.splice(frozen.indexOf(victim), 1);
      await expectAllViews(replica, head, frozen);
    }
    let written = 0;
    for (let block = 0; block < VOLUME / BLOCK; block++) {
      if (!head.subarray(block * BLOCK, (block + 1) * BLOCK).equals(Buffer.alloc(BLOCK))) written++;
    }
    // Blocks that only read as zeros may still be allocated (zeroed partially), never fewer than the data.
    expect(replica.allocatedBytes).toBeGreaterThanOrEqual(written * BLOCK);
    expect(replica.allocatedBytes).toBeLessThanOrEqual(VOLUME);
    expect(allocator.used).toBe(replica.allocatedBytes);
  });

  it("a merge into the live head never overwrites writes that race with it", async () => {
    const head = Buffer.alloc(VOLUME);
    await replica.write(0, filled(VOLUME, 1), NO_FUA);
    head.fill(1);
    const snapshot = await replica.snapshot("base");
    const rng = random(44);
    const merging = replica.deleteSnapshot(snapshot.id);
    const writes: Promise<void>[] = [];
    for (let i = 0; i < 200; i++) {
      const offset = rng.int(VOLUME - 100);
      const data = filled(1 + rng.int(99), 2 + (i % 200));
      data.copy(head, offset);
      writes.push(replica.write(offset, data, NO_FUA));
    }
    await Promise.all([merging, ...writes]);
    await expectAllViews(replica, head, []);
    expect(replica.allocatedBytes).toBe(VOLUME);
    expect(allocator.used).toBe(VOLUME);
  });

  it("revert gives exactly the snapshot's bytes and keeps newer snapshots readable", async () => {
    const head = Buffer.alloc(VOLUME);
    const frozen = await buildChain(6, 55, head);
    const target = frozen[2]!;
    await replica.revert(target.info.id);
    const reverted = Buffer.from(target.model);
    await expectAllViews(replica, reverted, frozen);
    expect(allocator.used).toBe(replica.allocatedBytes);

    // The reverted head is an ordinary head: it takes writes, snapshots, and a reopen.
    await churn(replica, reverted, random(56), 20);
    frozen.push({ info: await replica.snapshot("after-revert"), model: Buffer.from(reverted) });
    await replica.revert(frozen[5]!.info.id);
    await expectAllViews(replica, frozen[5]!.model, frozen);
    await replica.revert(frozen[0]!.info.id);
    await expectAllViews(replica, frozen[0]!.model, frozen);
    await replica.close();
    replica = await Replica.open(dir.path, { allocator: new TestAllocator() });
    await expectAllViews(replica, frozen[0]!.model, frozen);
  });

  it("clone gives exactly the snapshot's bytes and is independent of its source", async () => {
    const head = Buffer.alloc(VOLUME);
    const frozen = await buildChain(4, 66, head);
    const source = frozen[1]!;
    const cloneDir = `${dir.path}/clone`;
    const clone = await replica.cloneSnapshot(source.info.id, cloneDir, {
      volumeId: "vol-2",
      replicaId: "rep-2",
      epoch: 1,
      allocator,
    });
    try {
      await expectSameBytes((o, l) => clone.read(o, l), source.model);
      expect(clone.snapshots()).toEqual([]);
      // The snapshot's data runs (what a clone elsewhere reads) are exactly what the clone holds.
      expect(replica.snapshotRuns(source.info.id)).toEqual(Array.from(clone.allocatedRuns()));
      expect(clone.volumeId).toBe("vol-2");
      let sourceDataBlocks = 0;
      for (let block = 0; block < VOLUME / BLOCK; block++) {
        const viewBlock = await replica.readSnapshot(source.info.id, block * BLOCK, BLOCK);
        if (!viewBlock.equals(Buffer.alloc(BLOCK))) sourceDataBlocks++;
      }
      expect(clone.allocatedBytes).toBeGreaterThanOrEqual(sourceDataBlocks * BLOCK);
      expect(allocator.used).toBe(replica.allocatedBytes + clone.allocatedBytes);

      // Independent: writes to either side do not show on the other, and deleting the source's
      // snapshot leaves the clone as it was.
      const cloneModel = Buffer.from(source.model);
      await churn(clone, cloneModel, random(67), 20);
      await churn(replica, head, random(68), 20);
      await replica.deleteSnapshot(source.info.id);
      frozen.splice(1, 1);
      await expectSameBytes((o, l) => clone.read(o, l), cloneModel);
      await expectAllViews(replica, head, frozen);
    } finally {
      await clone.close();
    }
    const reopened = await Replica.open(cloneDir, { allocator: new TestAllocator() });
    await reopened.close();
  });

  it("rejects unknown snapshots with NOT_FOUND", async () => {
    await expect(replica.deleteSnapshot("00000000-0000-4000-8000-000000000000")).rejects.toMatchObject({
      code: "NOT_FOUND",
    });
  });

  it("snapshots a 64 GiB volume in O(1)", async () => {
    await replica.close();
    await dir.cleanup();
    dir = await tempDir();
    replica = await createReplica(dir.path, 64 * GiB, allocator);
    await replica.write(17 * GiB, filled(BLOCK, 4), NO_FUA);
    const started = performance.now();
    const snapshot = await replica.snapshot("big");
    const elapsedMs = performance.now() - started;
    console.log(`snapshot of a 64 GiB volume took ${elapsedMs.toFixed(2)} ms`);
    await replica.write(17 * GiB, filled(BLOCK, 5), NO_FUA);
    expect((await replica.readSnapshot(snapshot.id, 17 * GiB, BLOCK)).equals(filled(BLOCK, 4))).toBe(true);
    expect((await replica.read(17 * GiB, BLOCK)).equals(filled(BLOCK, 5))).toBe(true);
  });

  it("grows without touching data, and the new range reads zeros", async () => {
    await replica.write(0, filled(VOLUME, 6), NO_FUA);
    const snapshot = await replica.snapshot("before-grow");
    await replica.resize(2 * VOLUME);
    expect(replica.sizeBytes).toBe(2 * VOLUME);
    await replica.write(VOLUME + BLOCK, filled(BLOCK, 7), NO_FUA);
    await expect(replica.resize(VOLUME)).rejects.toMatchObject({ code: "INVALID_ARGUMENT" });
    await replica.close();
    replica = await Replica.open(dir.path, { allocator: new TestAllocator() });
    expect(replica.sizeBytes).toBe(2 * VOLUME);
    const expected = Buffer.alloc(2 * VOLUME)
      .fill(6, 0, VOLUME)
      .fill(7, VOLUME + BLOCK, VOLUME + 2 * BLOCK);
    await expectSameBytes((o, l) => replica.read(o, l), expected);
    expect((await replica.readSnapshot(snapshot.id, 0, VOLUME)).equals(filled(VOLUME, 6))).toBe(true);
  });

  it("tells where a snapshot may differ from an older one: patching those runs turns one into the other", async () => {
    const head = Buffer.alloc(VOLUME);
    const frozen = await buildChain(4, 77, head);
    for (let older = 0; older < frozen.length; older++) {
      for (let newer = older + 1; newer < frozen.length; newer++) {
        const runs = replica.snapshotRuns(frozen[newer]!.info.id, frozen[older]!.info.id);
        const patched = Buffer.from(frozen[older]!.model);
        for (const { offset, length } of runs) {
          (await replica.readSnapshot(frozen[newer]!.info.id, offset, length)).copy(patched, offset);
        }
        expect(patched.equals(frozen[newer]!.model)).toBe(true);
        // Only what the layers between them define: less than the whole view when little changed.
        const changedBytes = runs.reduce((sum, run) => sum + run.length, 0);
        expect(changedBytes).toBeLessThan(VOLUME);
      }
    }
    expect(() => replica.snapshotRuns(frozen[0]!.info.id, frozen[2]!.info.id)).toThrow("is not older than");
  });
});
