import { describe, expect, it } from "vitest";
import { BlockState, BlockStateMap } from "../../agent/store/block-state-map.js";
import { BLOCKS_PER_PAGE } from "../../agent/store/page-table.js";

const STATES = [BlockState.absent, BlockState.data, BlockState.zero] as const;

describe("counting the data a layer holds alone", () => {
  it("matches a block-by-block count over random maps of every state, across pages", () => {
    const lower = new BlockStateMap();
    const upper = new BlockStateMap();
    const blocks = 3 * BLOCKS_PER_PAGE + 123;
    let random = 42;
    const next = () => {
      random = (random * 1103515245 + 12345) % 2 ** 31;
      return random;
    };
    for (let i = 0; i < 40_000; i++) {
      lower.set(next() % blocks, STATES[next() % 3]!);
      upper.set(next() % blocks, STATES[next() % 3]!);
    }
    // A page only the lower layer has, and the last block of a page in both.
    lower.set(5 * BLOCKS_PER_PAGE + 7, BlockState.data);
    lower.set(BLOCKS_PER_PAGE - 1, BlockState.data);
    upper.set(BLOCKS_PER_PAGE - 1, BlockState.zero);

    let expected = 0;
    for (let block = 0; block < 6 * BLOCKS_PER_PAGE; block++) {
      if (lower.get(block) === BlockState.data && upper.get(block) !== BlockState.absent) expected++;
    }
    expect(expected).toBeGreaterThan(1000);
    expect(lower.countDataHiddenBy(upper)).toBe(expected);
  });
});
