import { Writable } from "node:stream";
import { describe, expect, it } from "vitest";
import { CliError } from "../../cli/failures.js";
import { followOperation } from "../../cli/progress.js";
import { describeOperationProgress, operationDescription, operationTable } from "../../cli/views.js";
import type { Operation } from "../../core/operations.js";

const MiB = 1024 ** 2;
const now = Date.parse("2030-01-01T00:10:00.000Z");

const operation = (overrides: Partial<Operation> = {}): Operation => ({
  id: "op-1",
  kind: "rebuild",
  volumeId: "vol-1",
  volumeName: "pg-data",
  node: "node-2",
  state: "running",
  params: { replicaId: "r-3" },
  progress: {
    bytesDone: 12 * MiB,
    bytesTotal: 40 * MiB,
    bytesPerSecond: 5 * MiB,
    updatedAt: "2030-01-01T00:09:59.000Z",
  },
  error: null,
  cancelRequested: false,
  requestToken: "cli-1",
  runnerId: "runner-1",
  createdAt: "2030-01-01T00:05:00.000Z",
  startedAt: "2030-01-01T00:06:00.000Z",
  endedAt: null,
  stalled: null,
  ...overrides,
});

describe("operation views", () => {
  it("shows progress with units, a percentage and, while it runs, a rate", () => {
    expect(describeOperationProgress(operation())).toBe("12 MiB of 40 MiB (30%), 5 MiB/s, 5s left");
    expect(describeOperationProgress(operation({ state: "succeeded" }))).toBe("12 MiB of 40 MiB (30%)");
    expect(describeOperationProgress(operation({ progress: null }))).toBe("-");
  });

  it("lists operations with their state, node, age, duration and error", () => {
    const failed = operation({
      id: "op-2",
      state: "failed",
      progress: null,
      endedAt: "2030-01-01T00:06:30.000Z",
      error: "the in-sync replica on node-1 stopped answering",
    });
    const stalled = operation({ id: "op-3", stalled: "node-2: no heartbeat for 20s" });
    const table = operationTable([operation(), failed, stalled], now).split("\n");
    expect(table[0]).toMatch(/^ID\s+KIND\s+VOLUME\s+NODE\s+STATE\s+PROGRESS\s+AGE\s+DURATION\s+ERROR$/);
    expect(table[1]).toMatch(
      /^op-1\s+rebuild\s+pg-data\s+node-2\s+running\s+12 MiB of 40 MiB \(30%\), 5 MiB\/s, 5s left\s+5m\s+4m\s+-$/,
    );
    expect(table[2]).toMatch(/failed\s+-\s+5m\s+30s\s+the in-sync replica on node-1 stopped answering$/);
    expect(table[3]).toContain("running (stalled)");
  });

  it("describes one operation", () => {
    const text = operationDescription(operation({ stalled: "node-2: down", cancelRequested: true }), now);
    expect(text).toContain("Volume:         pg-data (vol-1)");
    expect(text).toContain("State:          running, cancel requested");
    expect(text).toContain("Stalled:        node-2: down");
    expect(text).toContain("Params:         replicaId=r-3");
    expect(text).toContain("Started:        2030-01-01T00:06:00.000Z (4m ago)");
    expect(text).toContain("Ended:          -");
    expect(text).not.toContain("Error:");
  });
});

/** A client whose operation moves on by one state each time it is read. */
function scripted(states: Partial<Operation>[]) {
  let reads = 0;
  return {
    getOperation: async () => operation(states[Math.min(reads++, states.length - 1)]),
  };
}

function pipe(): { stream: Writable; text: () => string } {
  let text = "";
  const stream = new Writable({
    write(chunk: Buffer, _encoding, done) {
      text += chunk.toString("utf8");
      done();
    },
  });
  return { stream, text: () => text };
}

describe("following an operation", () => {
  it("prints plain progress lines when piped, and returns the operation when it succeeds", async () => {
    const out = pipe();
    const client = scripted([
      { state: "pending", progress: null, startedAt: null },
      {},
      { state: "succeeded" },
    ]);
    const ended = await followOperation(client, "op-1", {
      stream: out.stream,
      pollIntervalMs: 1,
      lineIntervalMs: 0,
    });
    expect(ended.state).toBe("succeeded");
    expect(out.text()).toBe(
      [
        "rebuild of pg-data on node-2: pending",
        "rebuild of pg-data on node-2: running, 12 MiB of 40 MiB (30%), 5 MiB/s, 5s left",
        "",
      ].join("\n"),
    );
  });

  it("prints a line only every few seconds", async () => {
    const out = pipe();
    const client = scripted([{}, {}, {}, {}, { state: "succeeded" }]);
    await followOperation(client, "op-1", { stream: out.stream, pollIntervalMs: 1, lineIntervalMs: 60_000 });
    expect(out.text().split("\n")).toHaveLength(2);
  });

  it("fails with the operation's error, or says it was cancelled", async () => {
    const options = { stream: pipe().stream, pollIntervalMs: 1 };
    await expect(
      followOperation(scripted([{}, { state: "failed", error: "node-1 ran out of space" }]), "op-1", options),
    ).rejects.toThrow(new CliError("rebuild of pg-data on node-2 failed: node-1 ran out of space"));
    await expect(followOperation(scripted([{ state: "cancelled" }]), "op-1", options)).rejects.toThrow(
      "rebuild of pg-data on node-2 was cancelled",
    );
  });
});
