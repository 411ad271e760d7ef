import { describe, expect, it } from "vitest";
import { splitRuns } from "../../agent/replication/coordinator/rebuild.js";

const run = (offset: number, length: number) => ({ offset, length });

describe("splitRuns", () => {
  it("splits changed regions into the parts that hold data and the parts that do not", () => {
    const regions = [run(0, 100), run(200, 100)];
    const allocated = [run(10, 20), run(90, 120), run(250, 10), run(400, 5)];
    expect(splitRuns(regions, allocated)).toEqual({
      inside: [run(10, 20), run(90, 10), run(200, 10), run(250, 10)],
      outside: [run(0, 10), run(30, 60), run(210, 40), run(260, 40)],
    });
  });

  it("keeps a run whole when nothing or everything of it is allocated", () => {
    expect(splitRuns([run(0, 50)], [])).toEqual({ inside: [], outside: [run(0, 50)] });
    expect(splitRuns([run(10, 20)], [run(0, 100)])).toEqual({ inside: [run(10, 20)], outside: [] });
    expect(splitRuns([], [run(0, 100)])).toEqual({ inside: [], outside: [] });
  });
});
