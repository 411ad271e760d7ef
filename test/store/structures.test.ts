import { describe, expect, it } from "vitest";
import { BlockState, BlockStateMap } from "../../agent/store/block-state-map.js";
import { IoGate } from "../../agent/store/io-gate.js";
import { LayerIndex, ZERO_FLAG } from "../../agent/store/layer-index.js";
import { RangeLocks } from "../../agent/store/range-locks.js";

/** The last block of the largest volume (64 TiB): block numbers beyond 2^32 must work. */
const LAST_BLOCK = 2 ** 34 - 1;

describe("BlockStateMap", () => {
  it("stores 2-bit states anywhere up to 64 TiB and counts data blocks", () => {
    const map = new BlockStateMap();
    for (const block of [0, 3, 4, 16383, 16384, 2 ** 32 + 5, LAST_BLOCK]) {
      expect(map.get(block)).toBe(BlockState.absent);
      map.set(block, BlockState.data);
    }
    map.set(2 ** 32 + 6, BlockState.zero);
    expect(map.get(2 ** 32 + 5)).toBe(BlockState.data);
    expect(map.get(2 ** 32 + 6)).toBe(BlockState.zero);
    // 2^32 + 5 aliases 5 if a 32-bit shift sneaks in.
    expect(map.get(5)).toBe(BlockState.absent);
    expect(map.get(LAST_BLOCK)).toBe(BlockState.data);
    expect(map.dataBlocks).toBe(7);
    expect(map.set(3, BlockState.zero)).toBe(BlockState.data);
    expect(map.dataBlocks).toBe(6);
  });

  it("finds defined blocks across empty pages", () => {
    const map = new BlockStateMap();
    const defined = [7, 16384 * 3 + 1, 2 ** 33, LAST_BLOCK];
    for (const block of defined) map.set(block, BlockState.zero);
    const found: number[] = [];
    for (let block = map.nextDefined(0); block >= 0; block = map.nextDefined(block + 1)) found.push(block);
    expect(found).toEqual(defined);
  });

  it("captures only pages that changed, and a failed write makes them dirty again", () => {
    const map = new BlockStateMap();
    map.set(1, BlockState.data);
    map.set(20000, BlockState.data);
    const first = map.captureDirtyPages();
    expect(first.map((image) => image.pageNumber).sort()).toEqual([0, 1]);
    expect(first[0]!.bytes[0]).toBe(0b0100);
    expect(map.hasDirtyPages).toBe(false);
    map.set(1, BlockState.data);
    expect(map.hasDirtyPages).toBe(false);
    map.markDirty(first);
    expect(map.captureDirtyPages()).toHaveLength(2);
  });

  it("rejects a page holding the invalid state code", () => {
    const map = new BlockStateMap();
    const page = new Uint8Array(4096);
    page[100] = 0b1100_0001;
    expect(map.loadPage(0, page)).toBe(100);
    page[100] = 0b1001_0101;
    expect(map.loadPage(0, page)).toBe(-1);
    expect(map.dataBlocks).toBe(3);
  });
});

describe("LayerIndex", () => {
  it("keeps entries for blocks beyond 2^32 apart from their low aliases", () => {
    const index = new LayerIndex();
    index.set(2 ** 32 + 9, 3 | ZERO_FLAG);
    index.set(LAST_BLOCK, 130);
    expect(index.get(9)).toBe(0);
    expect(index.get(2 ** 32 + 9)).toBe(3 | ZERO_FLAG);
    expect(index.dataPositionOf(2 ** 32 + 9)).toBe(0);
    expect(index.dataPositionOf(LAST_BLOCK)).toBe(130);
    expect(index.nextDefined(0)).toBe(2 ** 32 + 9);
    expect(index.nextDefined(2 ** 32 + 10)).toBe(LAST_BLOCK);
  });
});

describe("RangeLocks", () => {
  it("serialises overlapping ranges in arrival order and lets others through", async () => {
    const locks = new RangeLocks();
    const events: string[] = [];
    const a = await locks.acquire(0, 10);
    const b = locks.acquire(5, 6).then((range) => {
      events.push("b");
      return range;
    });
    const c = locks.acquire(20, 30).then((range) => {
      events.push("c");
      return range;
    });
    // d overlaps the waiting b only: it must still queue behind b.
    const d = locks.acquire(6, 40).then((range) => {
      events.push("d");
      return range;
    });
    locks.release(await c);
    await Promise.resolve();
    expect(events).toEqual(["c"]);
    locks.release(a);
    locks.release(await b);
    locks.release(await d);
    expect(events).toEqual(["c", "b", "d"]);
  });
});

describe("IoGate", () => {
  it("waits for I/O in flight and holds new I/O until resumed", async () => {
    const gate = new IoGate();
    await gate.enter();
    let quiesced = false;
    const quiescing = gate.quiesce().then((resume) => {
      quiesced = true;
      return resume;
    });
    let entered = false;
    const entering = gate.enter().then(() => {
      entered = true;
    });
    await new Promise((resolve) => setTimeout(resolve, 10));
    expect(quiesced).toBe(false);
    gate.leave();
    const resume = await quiescing;
    expect(entered).toBe(false);
    resume();
    await entering;
    expect(entered).toBe(true);
    gate.leave();
    gate.close();
    await expect(gate.enter()).rejects.toMatchObject({ errno: "ESHUTDOWN" });
  });
});
