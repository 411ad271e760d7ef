import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Volume } from "../../core/model.js";
import {
  clusterCli,
  clusterUp,
  oneSentence,
  prepareClusterDir,
  type RunningCluster,
  tearDownCluster,
} from "../cli/strata-process.js";
import { eventually } from "../support/eventually.js";

/**
 * One availability zone down, as an operator meets it: `strata cluster up --nodes 4 --zones 3`
 * deals four nodes over three zones (one zone gets two), whole zones are stopped with
 * `strata node stop`, and RF3 volumes are created while they are down and after they are back.
 */

/** Short, so a killed node shows down quickly; still several heartbeats (2 s) long. */
const env = { STRATA_HEARTBEAT_TIMEOUT_MS: "6000" };

let dir: string;
let cluster: RunningCluster | undefined;
const { cli, json } = clusterCli(() => dir, env);

interface StatusJson {
  nodes: { id: string; zone: string; state: "up" | "down" | "unreachable" }[];
}
const nodeStates = async () =>
  Object.fromEntries(
    (await json<StatusJson>("cluster", "status")).nodes.map((node) => [node.id, node.state]),
  );

/** Waits until `cluster status` reports every one of `nodes` in `state`. */
async function untilReported(nodes: readonly string[], state: "up" | "down"): Promise<void> {
  await eventually(
    async () => {
      const states = await nodeStates();
      return nodes.every((node) => states[node] === state);
    },
    `cluster status to report ${nodes.join(", ")} ${state}`,
  );
}

/** Zone of every node, and the nodes of every zone, from `node list` (the supervisor's own plan). */
let zoneOf: Map<string, string>;
let nodesIn: Map<string, string[]>;
/** The zone that got one node, and the one that got two. */
let soloZone: string;
let pairZone: string;

beforeAll(async () => {
  dir = await prepareClusterDir("strata-zone-down-");
  // The supervisor and its agents inherit this: placement and status treat a node silent this long as down.
  process.env.STRATA_HEARTBEAT_TIMEOUT_MS = env.STRATA_HEARTBEAT_TIMEOUT_MS;
  cluster = await clusterUp(dir, ["--nodes", "4", "--zones", "3"]);
});

afterAll(() => tearDownCluster(dir, cluster));

describe("one zone down on a four-node, three-zone local cluster", () => {
  it("deals the four nodes over three zones, all up", async () => {
    const listed = await json<{ nodes: { id: string; zone: string; process: string }[] }>("node", "list");
    expect(listed.nodes.map((node) => node.process)).toEqual(["running", "running", "running", "running"]);
    zoneOf = new Map(listed.nodes.map((node) => [node.id, node.zone]));
    nodesIn = new Map();
    for (const [node, zone] of zoneOf) nodesIn.set(zone, [...(nodesIn.get(zone) ?? []), node]);
    expect([...nodesIn.values()].map((nodes) => nodes.length).sort()).toEqual([1, 1, 2]);
    soloZone = [...nodesIn].find(([, nodes]) => nodes.length === 1)![0];
    pairZone = [...nodesIn].find(([, nodes]) => nodes.length === 2)![0];

    // The store agrees with the supervisor on where each node is.
    const status = await json<StatusJson>("cluster", "status");
    expect(new Map(status.nodes.map((node) => [node.id, node.zone]))).toEqual(zoneOf);
    expect(status.nodes.every((node) => node.state === "up")).toBe(true);
  });

  it("places RF3 on the three nodes outside a lost one-node zone, and warns it shares a zone", async () => {
    const lost = nodesIn.get(soloZone)!;
    for (const node of lost) expect((await cli("node", "stop", node)).code).toBe(0);
    await untilReported(lost, "down");

    const survivors = [...zoneOf.keys()].filter((node) => !lost.includes(node));
    const via = survivors[0]!;
    const outcome = await cli(
      "--json",
      "--node",
      via,
      "volume",
      "create",
      "v",
      "--size",
      "64MiB",
      "--repl",
      "3",
    );
    expect(outcome.code).toBe(0);
    const created = JSON.parse(outcome.stdout) as Volume;
    const holders = created.replicas.map((replica) => replica.node);
    expect(new Set(holders).size).toBe(3);
    expect(holders.sort()).toEqual([...survivors].sort());
    expect(created.replicas.every((replica) => replica.state === "in-sync")).toBe(true);
    const zones = created.replicas.map((replica) => replica.zone);
    expect(zones).not.toContain(soloZone);
    expect(new Set(zones)).toEqual(new Set([...nodesIn.keys()].filter((zone) => zone !== soloZone)));

    // The answer says it could not spread the replicas over three zones: in --json, and as a
    // warning on stderr in a table (the one below is placed by the same rule).
    const sharing = new RegExp(`only 2 zones available \\(.*\\); replicas on .* share zone ${pairZone}`);
    expect(created.warnings).toEqual([expect.stringMatching(sharing)]);
    const table = await cli("--node", via, "volume", "create", "v2", "--size", "64MiB", "--repl", "3");
    expect(table.code).toBe(0);
    expect(table.stdout).toMatch(/^volume "v2" created/);
    expect(table.stderr).toMatch(new RegExp(`^warning: ${sharing.source}`));
    expect((await cli("volume", "delete", "v2")).code).toBe(0);

    // Raising a volume's replica count online warns the same way when the new replica shares a zone.
    await json<Volume>("--node", via, "volume", "create", "w", "--size", "16MiB", "--repl", "2");
    expect((await cli("--node", via, "volume", "attach", "w")).code).toBe(0);
    const raised = await json<Volume>("--node", via, "volume", "ha-update", "w", "--repl", "3");
    expect(raised.replicas.map((replica) => replica.state)).toEqual(["in-sync", "in-sync", "in-sync"]);
    expect(raised.warnings).toEqual([expect.stringMatching(sharing)]);
    expect((await cli("--node", via, "volume", "detach", "w")).code).toBe(0);
    expect((await cli("volume", "delete", "w")).code).toBe(0);

    // The record says the same from another node.
    const inspected = await json<Volume>("--node", survivors[1]!, "volume", "inspect", "v");
    expect(inspected.replicas.map((replica) => replica.node).sort()).toEqual([...survivors].sort());

    for (const node of lost) expect((await cli("node", "start", node)).code).toBe(0);
    await untilReported(lost, "up");
  });

  it("refuses RF3 with the reason when a lost two-node zone leaves two nodes, and places RF2", async () => {
    // A zone lost abruptly: its agents are killed and only the heartbeat timeout tells.
    const lost = nodesIn.get(pairZone)!;
    for (const node of lost) expect((await cli("node", "stop", node, "--kill")).code).toBe(0);
    await untilReported(lost, "down");

    const survivors = [...zoneOf.keys()].filter((node) => !lost.includes(node)).sort();
    const via = survivors[0]!;
    const refused = await cli("--node", via, "volume", "create", "w", "--size", "64MiB", "--repl", "3");
    expect(refused.code).toBe(1);
    const sentence = oneSentence(refused);
    expect(sentence).toMatch(/^needs 3 nodes with room for 64 MiB; 2 qualify: /);
    for (const node of survivors) expect(sentence).toContain(`${node} (zone ${zoneOf.get(node)})`);
    for (const node of lost) expect(sentence).toMatch(new RegExp(`${node}: (down|no heartbeat for \\d+s)`));
    // Nothing half-made is listed.
    expect((await cli("--node", via, "volume", "inspect", "w")).code).toBe(1);

    // Two replicas still fit, one in each zone left.
    const rf2 = await json<Volume>("--node", via, "volume", "create", "w", "--size", "64MiB", "--repl", "2");
    expect(rf2.replicas.map((replica) => replica.node).sort()).toEqual(survivors);
    expect(new Set(rf2.replicas.map((replica) => replica.zone)).size).toBe(2);
  });

  it("spreads a new RF3 volume over three zones again once the zone is back", async () => {
    const lost = nodesIn.get(pairZone)!;
    for (const node of lost) expect((await cli("node", "start", node)).code).toBe(0);
    await untilReported([...zoneOf.keys()], "up");

    const placedBy = nodesIn.get(pairZone)![0]!;
    const created = await json<Volume>(
      "--node",
      placedBy,
      "volume",
      "create",
      "x",
      "--size",
      "64MiB",
      "--repl",
      "3",
    );
    expect(new Set(created.replicas.map((replica) => replica.node)).size).toBe(3);
    expect(new Set(created.replicas.map((replica) => replica.zone))).toEqual(new Set(nodesIn.keys()));
    expect(created.warnings).toBeUndefined();
  });
});
