import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { ListExecutionsCommand, SFNClient } from "@aws-sdk/client-sfn";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Volume } from "../../core/model.js";
import type { Operation } from "../../core/operations.js";
import {
  clusterCli,
  clusterUp,
  FAST_RECOVERY_ENV,
  prepareClusterDir,
  type RunningCluster,
  readCluster,
  tearDownCluster,
} from "../cli/strata-process.js";
import { DurableWriter } from "../support/durable-writer.js";
import { eventually } from "../support/eventually.js";
import { run as runClient } from "../support/run.js";
import { replicaDigests } from "./replica-digests.js";

/**
 * Recovery without a human, as an operator meets it: six agents in three zones, the local cloud
 * running the workflows from state-machines/ with the Lambdas from their bundles, and failures made
 * the way AWS makes them (`strata node kill` terminates the node's instance; `strata zone fail`
 * makes a zone unreachable and starts a zonal autoshift). The tests only watch: the bus's events,
 * the executions, the volumes, and the data.
 */

const MiB = 1024 * 1024;
const env = {
  ...FAST_RECOVERY_ENV,
  // A replacement that does not come within this long is given up on: re-replicate instead.
  STRATA_REPLACEMENT_WAIT_MS: "15000",
};
let dir: string;
let cluster: RunningCluster | undefined;
const { cli, json } = clusterCli(() => dir, env);
const inspect = (volume: string) => json<Volume>("volume", "inspect", volume);

interface BusEvent {
  "detail-type": string;
  source: string;
  time: string;
  detail: Record<string, unknown>;
}

async function busEvents(): Promise<BusEvent[]> {
  const text = await readFile(join(dir, "events.jsonl"), "utf8").catch(() => "");
  return text
    .split("\n")
    .filter((line) => line !== "")
    .map((line) => JSON.parse(line) as BusEvent);
}

interface RecoveryFinished {
  workflow: string;
  execution: string;
  subject: string;
  restored: string[];
  failed: { volume: string; reason: string }[];
}

/**
 * The "Strata Recovery Finished" event of an execution whose name starts with `execution` (the
 * workflow and phase: "node-loss-", "az-fail-", "az-restore-") for `subject`, put at or after `since`.
 */
async function recoveryFinished(
  execution: string,
  subject: string,
  since: number,
): Promise<RecoveryFinished> {
  let found: RecoveryFinished | undefined;
  await eventually(
    async () => {
      found = (await busEvents())
        .filter((event) => event["detail-type"] === "Strata Recovery Finished")
        .filter((event) => Date.parse(event.time) >= Math.floor(since / 1000) * 1000)
        .map((event) => event.detail as unknown as RecoveryFinished)
        .find((detail) => detail.execution.startsWith(execution) && detail.subject === subject);
      return found !== undefined;
    },
    `a ${execution}… execution to finish for ${subject}`,
    120_000,
  );
  return found!;
}

/** Executions of a state machine, through the local cloud's Step Functions endpoint and the real SDK. */
async function executions(workflow: "node-loss" | "az-failure"): Promise<string[]> {
  return (await executionStates(workflow)).map((execution) => execution.name);
}

async function executionStates(
  workflow: "node-loss" | "az-failure",
): Promise<{ name: string; status: string }[]> {
  const file = await readCluster(dir);
  const endpoint = file?.cloud?.endpoints.AWS_ENDPOINT_URL_SFN;
  if (endpoint === undefined) throw new Error("cluster.json names no Step Functions endpoint");
  const sfn = new SFNClient({
    endpoint,
    region: "local",
    credentials: { accessKeyId: "l", secretAccessKey: "l" },
  });
  try {
    const { executions } = await sfn.send(
      new ListExecutionsCommand({
        stateMachineArn: `arn:aws:states:local:000000000000:stateMachine:strata-${workflow}`,
      }),
    );
    return (executions ?? []).map((execution) => ({
      name: execution.name!,
      status: execution.status!,
      startDate: execution.startDate!,
    }));
  } finally {
    sfn.destroy();
  }
}

const liveReplicas = (volume: Volume) => volume.replicas.filter((replica) => replica.state !== "failed");
const zonesOf = (volume: Volume) => liveReplicas(volume).map((replica) => replica.zone);

/** Every replica of the volume holds the same bytes, and the volume has its replication factor again. */
async function expectWhole(name: string, replicationFactor: number): Promise<Volume> {
  const volume = await inspect(name);
  expect(volume.replicas.map((replica) => replica.state)).toEqual(Array(replicationFactor).fill("in-sync"));
  const digests = await replicaDigests(dir, cluster!.file, volume);
  expect(new Set(digests.values()).size).toBe(1);
  return volume;
}

beforeAll(async () => {
  dir = await prepareClusterDir("strata-recovery-");
  // The supervisor, its agents and its in-process Lambdas inherit these.
  Object.assign(process.env, env);
  cluster = await clusterUp(dir, ["--nodes", "6", "--zones", "3"]);
});

afterAll(() => tearDownCluster(dir, cluster));

describe("recovery without a human on a six-node, three-zone local cluster", () => {
  let nbdUri: string;
  let writer: DurableWriter;

  it("node kill: node-loss re-replicates every affected volume in other zones and loses no acknowledged write", async () => {
    await json<Volume>("volume", "create", "db", "--size", "64MiB", "--repl", "3");
    nbdUri = (await json<{ nbdUri: string }>("volume", "attach", "db")).nbdUri;
    const db = await inspect("db");
    const victim = db.replicas.map((replica) => replica.node).find((node) => node !== "node-1")!;
    await json<Volume>("--node", victim, "volume", "create", "cache", "--size", "16MiB", "--repl", "1");
    await json<Volume>("--node", victim, "volume", "create", "logs", "--size", "32MiB", "--repl", "2");

    writer = new DurableWriter(nbdUri, 400);
    await writer.reached(50);
    const killedAt = Date.now();
    expect((await cli("node", "kill", victim)).code).toBe(0);
    await writer.exited;
    expect(writer.refusals).toEqual([]);

    const outcome = await recoveryFinished("node-loss-", victim, killedAt);
    expect(outcome.restored.sort()).toEqual(["db", "logs"]);
    // The RF1 volume's only replica was on the lost node: reported with the reason, the rest went on.
    expect(outcome.failed.map((failure) => failure.volume)).toEqual(["cache"]);
    expect(outcome.failed[0]!.reason).toContain("no live node holds a replica");

    const healed = await expectWhole("db", 3);
    expect(healed.replicas.map((replica) => replica.node)).not.toContain(victim);
    expect(new Set(zonesOf(healed)).size).toBe(3);
    await expectWhole("logs", 2);
    await runClient("qemu-io", ["-f", "raw", nbdUri, ...writer.verifyCommands()]);

    // The EC2 state changes (shutting-down, terminated) and the health sweep's Node Offline all
    // named one incident: one execution.
    const sources = async () =>
      (await busEvents())
        .filter((event) => Date.parse(event.time) >= Math.floor(killedAt / 1000) * 1000)
        .map((event) => event["detail-type"]);
    expect(await sources()).toContain("EC2 Instance State-change Notification");
    await eventually(
      async () => (await sources()).includes("Strata Node Offline"),
      "the sweep's Node Offline",
    );
    // Delivered to event intake within moments; it must start nothing new.
    await sleep(2000);
    const named = (await executions("node-loss")).filter((name) => name.startsWith(`node-loss-${victim}-`));
    expect(named).toHaveLength(1);
  });

  it("node kill --replace: the drive set moves to the replacement instance and only what changed is resynced", async () => {
    const db = await inspect("db");
    const victim = db.replicas.map((replica) => replica.node).find((node) => node !== "node-1")!;
    const before = (await json<{ nodes: { id: string; instanceId: string | null }[] }>("node", "list")).nodes;
    const oldInstance = before.find((node) => node.id === victim)!.instanceId;

    const killedAt = Date.now();
    expect((await cli("node", "kill", victim, "--replace")).code).toBe(0);
    // Writes while the node is away: its replica misses them and is failed by the coordinator.
    await runClient("qemu-io", ["-f", "raw", nbdUri, "-c", `write -P 0x5a ${40 * MiB} ${4 * MiB}`]);

    await recoveryFinished("node-loss-", victim, killedAt);
    await eventually(
      async () => (await inspect("db")).replicas.every((replica) => replica.state === "in-sync"),
      "db to be in sync again",
    );
    const after = (await json<{ nodes: { id: string; instanceId: string | null }[] }>("node", "list")).nodes;
    const newInstance = after.find((node) => node.id === victim)!.instanceId;
    expect(newInstance).not.toBeNull();
    expect(newInstance).not.toBe(oldInstance);

    // The node came back with its data: it is still a replica holder, resynced, not rebuilt.
    const healed = await expectWhole("db", 3);
    expect(healed.replicas.map((replica) => replica.node)).toContain(victim);
    const copies = (await json<{ operations: Operation[] }>("operation", "list", "--volume", "db")).operations
      .filter((operation) => Date.parse(operation.createdAt) >= killedAt && operation.state === "succeeded")
      .filter((operation) => operation.kind === "resync" || operation.kind === "repair");
    expect(copies.every((operation) => operation.kind === "resync")).toBe(true);
    const copied = copies.reduce((sum, operation) => sum + (operation.progress?.bytesDone ?? 0), 0);
    expect(copied).toBeLessThan(healed.sizeBytes);
    await runClient("qemu-io", ["-f", "raw", nbdUri, "-c", `read -P 0x5a ${40 * MiB} ${4 * MiB}`]);
  });

  it("zone fail and restore: az-failure re-replicates out of the zone, then spreads replicas over three zones again", async () => {
    const db = await inspect("db");
    const zone = db.replicas.find((replica) => replica.node !== "node-1")!.zone!;
    const failedAt = Date.now();
    expect((await cli("zone", "fail", zone)).code).toBe(0);

    const failed = await recoveryFinished("az-fail-", zone, failedAt);
    expect(failed.failed.filter((failure) => failure.volume === "db")).toEqual([]);
    await eventually(
      async () => {
        const now = await inspect("db");
        return liveReplicas(now).length === 3 && !zonesOf(now).includes(zone);
      },
      `db to have three live replicas outside ${zone}`,
      120_000,
    );
    expect((await cli("cluster", "status")).stdout).toContain(
      `zone ${zone} is marked unavailable for placement`,
    );
    // While the zone is marked unavailable, nothing new is placed there.
    const placed = await json<Volume>("volume", "create", "during", "--size", "16MiB", "--repl", "2");
    expect(zonesOf(placed)).not.toContain(zone);

    const restoredAt = Date.now();
    expect((await cli("zone", "restore", zone)).code).toBe(0);
    const respread = await recoveryFinished("az-restore-", zone, restoredAt);
    expect(respread.failed.filter((failure) => failure.volume === "db")).toEqual([]);
    await eventually(
      async () => new Set(zonesOf(await inspect("db"))).size === 3,
      "db's replicas to be on three zones again",
      120_000,
    );
    await expectWhole("db", 3);
    await runClient("qemu-io", ["-f", "raw", nbdUri, ...writer.verifyCommands()]);
    expect((await cli("cluster", "status")).stdout).not.toContain("marked unavailable");
  });

  it("a volume that cannot be placed is reported with placement's reason, and the other volumes recover", async () => {
    interface Status {
      nodes: {
        id: string;
        state: string;
        pool: { capacityBytes: number; provisionedBytes?: number } | null;
      }[];
    }
    const status = await json<Status>("cluster", "status");
    const live = status.nodes.filter((node) => node.state === "up").map((node) => node.id);
    // Thin volumes sized so that no node has room for two: 60% of what over-provisioning (200% of
    // the capacity) lets a node promise.
    const capacity = status.nodes.find((node) => node.pool !== null)!.pool!.capacityBytes;
    const GiB = 1024 ** 3;
    const size = `${Math.floor((capacity * 2 * 0.6) / GiB)}GiB`;
    const victim = live.find((node) => node !== "node-1")!;
    const big = await json<Volume>(
      "--node",
      victim,
      "volume",
      "create",
      "big",
      "--size",
      size,
      "--repl",
      "2",
    );
    const holders = big.replicas.map((replica) => replica.node);
    expect(holders).toContain(victim);
    // Every other live node gets a volume as big: none has room for a replica of "big" any more.
    for (const node of live.filter((candidate) => !holders.includes(candidate))) {
      // Placement reads what the nodes' heartbeats (every 2 s) report as provisioned.
      await sleep(2500);
      await json<Volume>("--node", node, "volume", "create", `filler-${node}`, "--size", size, "--repl", "1");
    }
    await json<Volume>("--node", victim, "volume", "create", "small", "--size", "16MiB", "--repl", "2");
    const small = await inspect("small");

    const killedAt = Date.now();
    expect((await cli("node", "kill", victim)).code).toBe(0);
    const outcome = await recoveryFinished("node-loss-", victim, killedAt);
    const bigFailure = outcome.failed.find((failure) => failure.volume === "big");
    expect(bigFailure?.reason).toMatch(/needs 1 more node with room for/);
    expect(small.replicas.map((replica) => replica.node)).toContain(victim);
    expect(outcome.restored).toContain("small");
    const after = await inspect("big");
    // One live replica left, the lost one still failed in the record: nothing half-made.
    expect(after.replicas.filter((replica) => replica.state === "in-sync")).toHaveLength(1);
    expect(after.replicas.find((replica) => replica.node === victim)?.state).toBe("failed");
  });

  it("a node stopped cleanly and started again within its grace is not fenced, and nothing is copied", async () => {
    const db = await inspect("db");
    const node = db.replicas.find(
      (replica) => replica.node !== "node-1" && replica.state === "in-sync",
    )!.node;
    const stoppedAt = Date.now();
    expect((await cli("node", "stop", node)).code).toBe(0);
    // The sweep sees it down at once (its agent said so) and node-loss starts, waiting for it.
    await eventually(
      async () => (await executions("node-loss")).some((name) => name.startsWith(`node-loss-${node}-`)),
      `node-loss to start for ${node}`,
    );
    expect((await cli("node", "start", node)).code).toBe(0);
    const run = async () =>
      (await executionStates("node-loss")).find((execution) =>
        execution.name.startsWith(`node-loss-${node}-`),
      );
    await eventually(async () => (await run())?.status !== "RUNNING", "node-loss to end");
    expect((await run())?.status).toBe("SUCCEEDED");
    const finished = (await busEvents()).filter(
      (event) =>
        event["detail-type"] === "Strata Recovery Finished" &&
        Date.parse(event.time) >= Math.floor(stoppedAt / 1000) * 1000 &&
        event.detail.subject === node,
    );
    expect(finished).toEqual([]);
    // Its replica is db's still: in sync again once its coordinator has resynced what it missed.
    await eventually(
      async () =>
        (await inspect("db")).replicas.find((replica) => replica.node === node)?.state === "in-sync",
      `db's replica on ${node} to be in sync`,
    );
    // node-loss fenced nothing and started no copy (its request tokens name its execution).
    const copies = (await json<{ operations: Operation[] }>("operation", "list")).operations.filter(
      (operation) =>
        Date.parse(operation.createdAt) >= stoppedAt && operation.requestToken.startsWith("node-loss-"),
    );
    expect(copies).toEqual([]);
  });
});
