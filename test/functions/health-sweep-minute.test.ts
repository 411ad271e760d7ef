import { describe, expect, it } from "vitest";
import { sweepOverThePeriod } from "../../functions/health-sweep/minute.js";

describe("sweeping several times per scheduled invocation", () => {
  it("sweeps as many times as asked over the period, in order", async () => {
    let count = 0;
    const results = await sweepOverThePeriod(async () => ++count, {
      sweeps: 4,
      periodMs: 200,
      remainingMs: () => 60_000,
    });
    expect(results).toEqual([1, 2, 3, 4]);
  });

  it("stops before a sweep the invocation's remaining time would not cover", async () => {
    let count = 0;
    // 100 ms between sweeps, 50 ms left after the first: the second would outlive the invocation.
    const results = await sweepOverThePeriod(async () => ++count, {
      sweeps: 6,
      periodMs: 600,
      remainingMs: () => 50,
    });
    expect(results).toEqual([1]);
  });
});
