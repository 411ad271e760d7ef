import { describe, expect, it } from "vitest";
import {
  RecoveryFinishedDetail,
  RedundancyRestoredDetail,
  StrataDetailType,
  type StrataEventEntry,
} from "../../core/events.js";
import { ReportRecoveryInput, reportRecovery } from "../../functions/report-recovery/report.js";
import { CLUSTER } from "./support.js";

/** Reports as the handler does, keeping what it would have put on the bus. */
async function report(input: unknown) {
  const put: StrataEventEntry[] = [];
  const result = await reportRecovery(ReportRecoveryInput.parse(input), CLUSTER, async (entries) => {
    put.push(...entries);
  });
  const ofType = (type: StrataDetailType) => put.filter((entry) => entry.DetailType === type);
  return {
    result,
    put,
    restored: ofType(StrataDetailType.redundancyRestored).map((entry) =>
      RedundancyRestoredDetail.strict().parse(JSON.parse(entry.Detail)),
    ),
    finished: ofType(StrataDetailType.recoveryFinished).map((entry) =>
      RecoveryFinishedDetail.strict().parse(JSON.parse(entry.Detail)),
    ),
  };
}

const base = { workflow: "node-loss", execution: "node-loss-node-1-x", subject: "node-1" };

describe("reporting a recovery", () => {
  it("puts one Redundancy Restored per restored volume and one Recovery Finished listing the failed", async () => {
    const { result, put, restored, finished } = await report({
      ...base,
      how: "resynced",
      results: [
        { volume: "vol-a", outcome: "restored", bytesCopied: 4096 },
        { volume: "vol-b", outcome: "failed", reason: "stalled: node-2: no heartbeat for 30s" },
        { volume: "vol-c", outcome: "restored", bytesCopied: 0 },
        { volume: "vol-d", outcome: "failed", reason: null },
      ],
      unplanned: [{ volume: "vol-e", reason: "no live node holds a replica of it" }],
    });

    expect(put.every((entry) => entry.Source === "strata")).toBe(true);
    expect(restored).toEqual([
      {
        clusterName: CLUSTER,
        volume: "vol-a",
        execution: base.execution,
        how: "resynced",
        bytesCopied: 4096,
      },
      { clusterName: CLUSTER, volume: "vol-c", execution: base.execution, how: "resynced", bytesCopied: 0 },
    ]);
    expect(finished).toEqual([
      {
        clusterName: CLUSTER,
        workflow: "node-loss",
        execution: base.execution,
        subject: "node-1",
        restored: ["vol-a", "vol-c"],
        failed: [
          { volume: "vol-b", reason: "stalled: node-2: no heartbeat for 30s" },
          { volume: "vol-d", reason: "the operation failed" },
          { volume: "vol-e", reason: "no live node holds a replica of it" },
        ],
      },
    ]);
    expect(result).toEqual({ restored: 2, failed: 3, complete: false });
  });

  it("is complete when every volume was restored and nothing went wrong", async () => {
    const { result, finished } = await report({
      ...base,
      results: [{ volume: "vol-a", outcome: "restored", bytesCopied: 1 }],
    });

    expect(result).toEqual({ restored: 1, failed: 0, complete: true });
    expect(finished[0]).not.toHaveProperty("error");
  });

  it("reduces a Lambda error's Cause to its message, and is not complete", async () => {
    const cause = JSON.stringify({
      errorType: "Strata.Refused",
      errorMessage: "node node-1 is not a node of this cluster",
      trace: ["Strata.Refused: node node-1 is not a node of this cluster", "    at fenceLostNode"],
    });

    const { result, finished, restored } = await report({
      ...base,
      error: { Error: "Strata.Refused", Cause: cause },
    });

    expect(restored).toEqual([]);
    expect(finished[0]?.error).toBe("Strata.Refused: node node-1 is not a node of this cluster");
    expect(result).toEqual({ restored: 0, failed: 0, complete: false });
  });

  it("keeps a Cause that is not JSON as it is, and says when none was given", async () => {
    const plain = await report({ ...base, error: { Error: "States.Timeout", Cause: "the task timed out" } });
    const none = await report({ ...base, error: { Error: "States.Timeout" } });

    expect(plain.finished[0]?.error).toBe("States.Timeout: the task timed out");
    expect(none.finished[0]?.error).toBe("States.Timeout: no cause given");
  });
});
