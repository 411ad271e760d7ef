import { describe, expect, it } from "vitest";
import { agentArguments, planLocalNodes } from "../../infra/local/node-spec.js";

const layout = {
  dir: "/c",
  apiPort: 9410,
  nbdPort: 10809,
  replicationPort: 9510,
  nbdHost: "127.0.0.1",
  stateTable: "strata-state",
};

describe("planLocalNodes", () => {
  it("deals nodes round-robin over the zones", () => {
    const zones = (nodeCount: number, zoneCount: number) =>
      planLocalNodes({ ...layout, nodeCount, zoneCount }).map((node) => `${node.id}/${node.zone}`);
    expect(zones(3, 3)).toEqual(["node-1/local-a", "node-2/local-b", "node-3/local-c"]);
    expect(zones(3, 2)).toEqual(["node-1/local-a", "node-2/local-b", "node-3/local-a"]);
    expect(zones(2, 1)).toEqual(["node-1/local-a", "node-2/local-a"]);
    expect(() => zones(1, 0)).toThrow(/1 to 26 zones/);
  });

  it("gives each node its own data dir and ports, and the state table", () => {
    const [, second] = planLocalNodes({ ...layout, nodeCount: 2, zoneCount: 3 });
    expect(agentArguments(second!)).toEqual([
      "--data-dir",
      "/c/nodes/node-2",
      "--node-id",
      "node-2",
      "--zone",
      "local-b",
      "--api-listen",
      "127.0.0.1:9411",
      "--nbd-listen",
      "127.0.0.1:10810",
      "--nbd-socket",
      "/c/nodes/node-2/nbd.sock",
      "--replication-listen",
      "127.0.0.1:9511",
      "--state-table",
      "strata-state",
    ]);
  });
});
