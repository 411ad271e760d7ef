import { describe, expect, it } from "vitest";
import { heartbeatTimeoutMs, whyDown } from "../../core/liveness.js";

const now = new Date("2025-01-01T00:01:00.000Z");
const clock = { heartbeatTimeoutMs: 10_000, now };
const beatAgo = (seconds: number) => new Date(now.getTime() - seconds * 1000).toISOString();

describe("liveness from heartbeats", () => {
  it("calls a node with a fresh heartbeat up", () => {
    expect(whyDown({ state: "up", lastHeartbeat: beatAgo(10) }, clock)).toBeUndefined();
  });

  it("calls a node down when it says so, or when its heartbeat is older than the timeout", () => {
    expect(whyDown({ state: "down", lastHeartbeat: beatAgo(0) }, clock)).toBe("down");
    expect(whyDown({ state: "up", lastHeartbeat: beatAgo(12) }, clock)).toBe("no heartbeat for 12s");
  });

  it("takes the timeout from STRATA_HEARTBEAT_TIMEOUT_MS when it is a positive whole number", () => {
    expect(heartbeatTimeoutMs({ STRATA_HEARTBEAT_TIMEOUT_MS: "6000" })).toBe(6000);
    expect(heartbeatTimeoutMs({ STRATA_HEARTBEAT_TIMEOUT_MS: "soon" })).toBe(10_000);
    expect(heartbeatTimeoutMs({})).toBe(10_000);
  });
});
