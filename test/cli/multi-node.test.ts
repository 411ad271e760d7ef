import { stat } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { isAlive } from "../../infra/local/processes.js";
import { eventually } from "../support/eventually.js";
import {
  clusterUp,
  oneSentence,
  prepareClusterDir,
  type RunningCluster,
  readCluster,
  strata,
  tearDownCluster,
} from "./strata-process.js";

/**
 * The local cluster as a user runs it: three agents in three zones around one dynalite, nodes
 * stopped and started by hand through the supervisor, and everything stopped and brought back.
 */

/** Short, so a killed node shows down quickly; still several heartbeats (2 s) long. */
const HEARTBEAT_TIMEOUT_MS = 6_000;
const env = { STRATA_HEARTBEAT_TIMEOUT_MS: String(HEARTBEAT_TIMEOUT_MS) };

let dir: string;
let cluster: RunningCluster | undefined;
const run = (...args: string[]) => strata(["--dir", dir, ...args], env);

interface StatusJson {
  dynamodb: { endpoint: string; table: string };
  sharedFilesystems: { nodes: string[]; freeBytes: number }[];
  nodes: { id: string; zone: string; state: string; live: { volumeCount: number } | null }[];
  volumes: { name: string; replicas: { node: string; state: string }[] }[];
}
interface NodeListJson {
  nodes: { id: string; process: string; pid: number | null }[];
}
const json = async <T>(...args: string[]): Promise<T> => {
  const outcome = await run("--json", ...args);
  expect(outcome.stderr).toBe("");
  expect(outcome.code).toBe(0);
  return JSON.parse(outcome.stdout) as T;
};
const status = () => json<StatusJson>("cluster", "status");
const states = async () => Object.fromEntries((await status()).nodes.map((node) => [node.id, node.state]));

beforeAll(async () => {
  dir = await prepareClusterDir("strata-multi-");
});

afterAll(() => tearDownCluster(dir, cluster));

describe("a three-node local cluster", () => {
  it("starts three nodes in three zones around its own state store", async () => {
    cluster = await clusterUp(dir);
    expect(cluster.file.nodes.map((node) => [node.id, node.zone])).toEqual([
      ["node-1", "local-a"],
      ["node-2", "local-b"],
      ["node-3", "local-c"],
    ]);
    expect(cluster.file.dynamodb).toMatchObject({
      endpoint: expect.stringMatching(/^http:\/\/127\.0\.0\.1:\d+$/),
    });
    expect((await stat(join(dir, "cluster-secret"))).mode & 0o777).toBe(0o600);

    const up = await status();
    expect(up.dynamodb).toEqual(cluster.file.dynamodb);
    expect(up.nodes.map((node) => [node.id, node.zone, node.state])).toEqual([
      ["node-1", "local-a", "up"],
      ["node-2", "local-b", "up"],
      ["node-3", "local-c", "up"],
    ]);
    expect(cluster.output()).toMatch(/^node-3\s+local-c\s+up\s+0\s/m);
    // The three pools are directories of one filesystem: its free space is said once, not thrice.
    expect(up.sharedFilesystems).toEqual([
      { nodes: ["node-1", "node-2", "node-3"], freeBytes: expect.any(Number) },
    ]);
    expect((await run("cluster", "status")).stdout).toMatch(
      /^node-1, node-2, node-3 share one filesystem \(\d+(\.\d)? [KMGT]iB free\)$/m,
    );
    expect(cluster.output()).toContain(`--dir ${dir} node stop node-2 --kill`);
    expect(cluster.output()).toContain(`--dir ${dir} node kill node-2`);
    expect(cluster.output()).toContain(`--dir ${dir} events --follow`);
  });

  it("creates a volume on the node named by --node, and shows its replica there", async () => {
    expect((await run("--node", "node-2", "volume", "create", "pg", "--size", "1GiB")).code).toBe(0);
    const { volumes, nodes } = await status();
    expect(volumes).toEqual([
      expect.objectContaining({
        name: "pg",
        replicas: [expect.objectContaining({ node: "node-2", state: "in-sync" })],
      }),
    ]);
    expect(nodes.map((node) => node.live?.volumeCount)).toEqual([0, 1, 0]);

    const table = await run("cluster", "status");
    expect(table.stdout).toMatch(/^VOLUME\s+SIZE\s+REPLICAS\s+EPOCH\s+ATTACHED$/m);
    expect(table.stdout).toMatch(/^pg\s+1 GiB\s+node-2\(in-sync\)\s+\d+\s+-$/m);

    // A well-formed node the cluster does not have is a refused request, whichever command names it.
    for (const args of [
      ["--node", "node-9", "volume", "list"],
      ["node", "stop", "node-9"],
      ["node", "start", "node-9"],
    ]) {
      const unknown = await run(...args);
      expect(unknown.code, args.join(" ")).toBe(1);
      expect(oneSentence(unknown)).toBe('no node "node-9" in this cluster (nodes: node-1, node-2, node-3)');
    }
  });

  it("shows a killed node down, and leaves it down until it is started again", async () => {
    const killed = await run("node", "stop", "node-2", "--kill");
    expect(killed).toMatchObject({ code: 0, stdout: 'node "node-2" killed\n' });
    await eventually(async () => (await states())["node-2"] === "down", "node-2 shows down");
    expect(await states()).toEqual({ "node-1": "up", "node-2": "down", "node-3": "up" });
    // Its replica's recorded state is what the volume last knew; the table says its node is down.
    expect((await run("cluster", "status")).stdout).toMatch(/^pg\s+1 GiB\s+node-2\(in-sync, node down\)\s/m);

    // Past the heartbeat timeout, which is longer than the supervisor's first restart delay (1 s).
    const list = await json<NodeListJson>("node", "list");
    expect(list.nodes.find((node) => node.id === "node-2")).toMatchObject({ process: "stopped", pid: null });
    expect(cluster!.output()).not.toMatch(/node-2: agent \(pid \d+\) stopped unexpectedly/);
    expect((await run("node", "list")).stdout).toMatch(/^node-2\s+local-b\s+i-[0-9a-f]+\s+stopped\s+-\s/m);

    const started = await run("node", "start", "node-2");
    expect(started.code).toBe(0);
    expect(started.stdout).toMatch(/^node "node-2" running \(pid \d+\)$/m);
    expect(await states()).toEqual({ "node-1": "up", "node-2": "up", "node-3": "up" });
    expect((await status()).volumes.map((volume) => volume.name)).toEqual(["pg"]);

    const bad = await run("node", "stop", "node-9");
    expect(bad.code).toBe(1);
    expect(oneSentence(bad)).toBe('no node "node-9" in this cluster (nodes: node-1, node-2, node-3)');
  });

  it("stops every process on Ctrl-C and brings nodes and volumes back on the next start", async () => {
    const pids = (await json<NodeListJson>("node", "list")).nodes.map((node) => node.pid!);
    expect(pids).toHaveLength(3);
    const running = cluster!;
    cluster = undefined;
    running.process.kill("SIGINT");
    expect(await running.exited).toBe(0);
    expect(pids.filter(isAlive)).toEqual([]);
    expect(await readCluster(dir)).toBeUndefined();

    cluster = await clusterUp(dir);
    // The banner of a cluster with volumes shows how to reach them, not how to create one.
    expect(cluster.output()).toContain(`--dir ${dir} volume attach pg`);
    expect(cluster.output()).not.toContain("volume create");
    const again = await status();
    expect(again.nodes.map((node) => [node.id, node.state])).toEqual([
      ["node-1", "up"],
      ["node-2", "up"],
      ["node-3", "up"],
    ]);
    expect(
      again.volumes.map((volume) => [volume.name, volume.replicas.map((replica) => replica.node)]),
    ).toEqual([["pg", ["node-2"]]]);
  });
});
