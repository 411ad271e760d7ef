import { createHash, randomBytes } from "node:crypto";
import { rm } from "node:fs/promises";
import { setTimeout as sleep } from "node:timers/promises";
import { DynamoDBClient } from "@aws-sdk/client-dynamodb";
import { pino } from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { connectReplica, type ReplicaClient } from "../../agent/replication/client.js";
import { StaleEpochError } from "../../agent/replication/errors.js";
import { localAwsEnvironment } from "../../core/local-aws-environment.js";
import type { Volume } from "../../core/model.js";
import { type LocalDynamoDb, startLocalDynamoDb } from "../../core/state/local-dynamodb.js";
import { StateStore } from "../../core/state/store.js";
import { prepareClusterDir } from "../cli/strata-process.js";
import { DurableWriter } from "../support/durable-writer.js";
import { eventually } from "../support/eventually.js";
import { fio } from "../support/fio.js";
import { NetnsLab } from "../support/netns.js";
import { NetnsAgent } from "../support/netns-agent.js";
import { run as runClient } from "../support/run.js";

/**
 * Network partitions, not process kills: three agents, each in its own network namespace on one
 * bridge (test/support/netns.ts), dynalite in the root namespace. A partition drops every frame
 * to and from one node without a word (no RST, no ICMP), so the coordinator learns of it only by
 * its request timeout. The NBD clients reach the attached node's agent over its Unix socket, like
 * a pod on that node, which a network partition leaves alone.
 */

const MiB = 1024 * 1024;
const TABLE = "strata-state";
const SECRET = randomBytes(32).toString("hex");
const HOSTS = ["a", "b", "c"] as const;
type Host = (typeof HOSTS)[number];

let dir: string | undefined;
let lab: NetnsLab | undefined;
let dynamo: LocalDynamoDb | undefined;
let store: StateStore | undefined;
const agents = new Map<Host, NetnsAgent>();
const writers: DurableWriter[] = [];
const agent = (host: Host) => agents.get(host)!;
const quiet = pino({ level: "silent" });

/** The agents' warnings and errors, so a failure says what went on inside the cluster. */
const agentErrors = () =>
  [...agents.values()].flatMap((node) => node.logTail(8).map((line) => `${node.nodeId}: ${line}`)).join("\n");

async function inspect(host: Host, volume: string): Promise<Volume> {
  const answer = await agent(host).api<Volume>("GET", `/v1/volumes/${volume}`);
  if (answer.status !== 200) throw new Error(`inspect ${volume}: ${JSON.stringify(answer.body)}`);
  return answer.body;
}
const replicaStates = async (host: Host, volume: string) =>
  Object.fromEntries((await inspect(host, volume)).replicas.map((replica) => [replica.node, replica.state]));

async function createVolume(name: string, sizeBytes: number, replicationFactor: number): Promise<Volume> {
  const created = await agent("a").api<Volume>("POST", "/v1/volumes", { name, sizeBytes, replicationFactor });
  if (created.status !== 201) throw new Error(`create ${name}: ${JSON.stringify(created.body)}`);
  return created.body;
}

async function attach(host: Host, volume: string): Promise<{ node: string }> {
  const attached = await agent(host).api<{ node: string }>("POST", `/v1/volumes/${volume}/attach`);
  if (attached.status !== 200) {
    throw new Error(`attach ${volume} on ${host}: ${JSON.stringify(attached.body)}\n${agentErrors()}`);
  }
  return attached.body;
}

/** A replication-protocol client to the host's replica server, authenticated with the cluster secret. */
function replicaClient(host: Host): Promise<ReplicaClient> {
  const [address, port] = agent(host).endpoints.replicationAddress!.split(":");
  return connectReplica({ host: address!, port: Number(port), secret: SECRET, log: quiet });
}

/** The sha256 of a replica's whole contents, read on its node over the replication protocol. */
async function replicaDigest(host: Host, volume: Volume): Promise<string> {
  const client = await replicaClient(host);
  try {
    const hash = createHash("sha256");
    for (let offset = 0; offset < volume.sizeBytes; offset += 4 * MiB) {
      hash.update(await client.read(volume.id, offset, 4 * MiB));
    }
    return hash.digest("hex");
  } finally {
    await client.close();
  }
}

/**
 * Waits until every replica of `volume` is in sync again (`returning`'s resync done), then checks
 * all three hold the same bytes; resolves with the volume as node-b sees it.
 */
async function resynced(volume: string, returning: string): Promise<Volume> {
  await eventually(
    async () => Object.values(await replicaStates("b", volume)).every((state) => state === "in-sync"),
    `${returning}'s replica of ${volume} to be resynced`,
    60_000,
  );
  const record = await inspect("b", volume);
  const digests = await Promise.all(HOSTS.map((host) => replicaDigest(host, record)));
  expect(new Set(digests).size).toBe(1);
  return record;
}

/** True once the node's heartbeat in the store is fresh (it reaches the store again). */
async function heartbeating(host: Host): Promise<boolean> {
  const node = (await store!.nodes.list()).find((record) => record.id === agent(host).nodeId);
  return node?.state === "up" && Date.now() - Date.parse(node.lastHeartbeat) < 4_000;
}

beforeAll(async () => {
  dir = await prepareClusterDir("strata-partition-");
  lab = await NetnsLab.create(HOSTS);
  dynamo = await startLocalDynamoDb({ host: lab.rootAddress });
  store = new StateStore({
    tableName: TABLE,
    client: new DynamoDBClient({
      endpoint: dynamo.endpoint,
      region: "local",
      credentials: { accessKeyId: "local", secretAccessKey: "local" },
    }),
  });
  await store.ensureTable();
  const env = {
    ...localAwsEnvironment(dynamo.endpoint),
    STRATA_CLUSTER_SECRET: SECRET,
    STRATA_HEARTBEAT_TIMEOUT_MS: "6000",
  };
  for (const [index, host] of HOSTS.entries()) {
    agents.set(
      host,
      new NetnsAgent({ lab, host, zone: `local-${"abc"[index]}`, root: dir, stateTable: TABLE, env }),
    );
  }
  await Promise.all([...agents.values()].map((node) => node.start()));
  await eventually(
    async () => (await Promise.all(HOSTS.map(heartbeating))).every(Boolean),
    "every agent to register in the state store",
  );
});

afterAll(async () => {
  for (const writer of writers) writer.stop();
  await Promise.allSettled([...agents.values()].map((node) => node.kill9()));
  await lab?.destroy();
  store?.close();
  await dynamo?.close();
  // STRATA_KEEP_TEST_DIR=1 keeps the agents' data dirs and logs for a look after the run.
  if (dir && process.env.STRATA_KEEP_TEST_DIR) console.log(`agents' data and logs kept in ${dir}`);
  else if (dir) await rm(dir, { recursive: true, force: true });
});

describe("network partitions of real agents in their own network namespaces", () => {
  it("drops a silently partitioned replica by its timeout while fio writes and verifies, and resyncs it once healed", async () => {
    const created = await createVolume("db", 256 * MiB, 3);
    expect(created.replicas.map((replica) => replica.zone).sort()).toEqual(["local-a", "local-b", "local-c"]);
    await attach("a", "db");
    const before = await inspect("a", "db");

    // fio writes 64 MiB and reads it all back checking crc32c; node-c drops off the network midway.
    const load = fio(agent("a").nbdUnixUri("db"), [
      "--rw=randwrite",
      "--bs=4k",
      "--iodepth=16",
      "--size=64m",
      "--verify=crc32c",
      "--verify_fatal=1",
      "--do_verify=1",
    ]);
    await eventually(async () => (await inspect("a", "db")).allocatedBytes > 8 * MiB, "fio to write 8 MiB");
    await lab!.partition("c");
    const result = await load;
    expect(result.error).toBe(0);
    expect(result.read.io_bytes).toBe(64 * MiB);

    const degraded = await inspect("a", "db");
    expect(await replicaStates("a", "db")).toEqual({
      "node-a": "in-sync",
      "node-b": "in-sync",
      "node-c": "failed",
    });
    expect(degraded.epoch).toBeGreaterThan(before.epoch);
    // Found by the request timeout (nothing reset the connection), then removed by the coordinator.
    const logOfA = agent("a").logEntries();
    expect(
      logOfA.some(
        (entry) =>
          entry.msg === "replication: replica timed out" &&
          entry.replica === agent("c").endpoints.replicationAddress,
      ),
    ).toBe(true);
    expect(
      logOfA.some(
        (entry) => entry.volume === created.id && entry.msg === "removing failed replicas from the volume",
      ),
    ).toBe(true);

    // Healed, node-c heartbeats again and the coordinator resyncs its replica: it comes back in
    // sync, holding the same bytes as the other two, and I/O goes on meanwhile.
    await lab!.heal("c");
    await eventually(() => heartbeating("c"), "node-c to reach the state store again", 60_000);
    await runClient("qemu-io", [
      "-f",
      "raw",
      agent("a").nbdUnixUri("db"),
      "-c",
      `write -P 0x7b ${200 * MiB} 1M`,
      "-c",
      `read -P 0x7b ${200 * MiB} 1M`,
    ]);
    const after = await resynced("db", "node-c");
    expect(after.attachedNode).toBe("node-a");
    expect(after.epoch).toBeGreaterThan(degraded.epoch);
  });

  it("fences a partitioned coordinator: the other side takes the volume, and only it writes", async () => {
    await eventually(
      async () => (await Promise.all(HOSTS.map(heartbeating))).every(Boolean),
      "every node to heartbeat",
    );
    const created = await createVolume("logs", 128 * MiB, 3);
    await attach("a", "logs");
    const epochOfA = (await inspect("a", "logs")).epoch;

    // FUA writes of 64 KiB through node-a, from a client on node-a; then node-a drops off the network.
    const writes = 1500;
    const writer = new DurableWriter(agent("a").nbdUnixUri("logs"), writes);
    writers.push(writer);
    await writer.reached(50);
    await lab!.partition("a");

    // The other side moves the volume to node-b: node-a cannot be reached, so it is removed.
    expect((await attach("b", "logs")).node).toBe("node-b");
    const moved = await inspect("b", "logs");
    expect(moved.attachedNode).toBe("node-b");
    expect(moved.epoch).toBeGreaterThan(epochOfA);
    expect(Object.fromEntries(moved.replicas.map((replica) => [replica.node, replica.state]))).toEqual({
      "node-a": "failed",
      "node-b": "in-sync",
      "node-c": "in-sync",
    });

    // node-b's side writes, where node-a's writer has yet to get to: its last write's range.
    const contested = (writes - 1) * 64 * 1024;
    await runClient("qemu-io", [
      "-f",
      "raw",
      agent("b").nbdUnixUri("logs"),
      "-c",
      `write -P 0x5a ${contested} 64k`,
      "-c",
      `read -P 0x5a ${contested} 64k`,
    ]);
    // node-a's epoch is refused by the replicas it would write to.
    for (const host of ["b", "c"] as const) {
      const client = await replicaClient(host);
      try {
        const refused = await client
          .write(created.id, epochOfA, contested, Buffer.alloc(4096, 0xee), { fua: true })
          .then(
            () => undefined,
            (error: unknown) => error,
          );
        expect(refused).toBeInstanceOf(StaleEpochError);
      } finally {
        await client.close();
      }
    }

    // node-a's requests to its replicas time out; it must record their removal before it
    // acknowledges anything more, and the store is out of its reach: its I/O waits.
    const removing = () =>
      agent("a")
        .logEntries()
        .some(
          (entry) => entry.volume === created.id && entry.msg === "removing failed replicas from the volume",
        );
    await eventually(async () => removing(), "node-a to time out on its replicas and try to remove them");
    const acknowledgedWhileCut = writer.acknowledged.length;
    expect(acknowledgedWhileCut).toBeLessThan(writes);
    // Cut off a while longer: its store write is lost in the partition, and nothing is acknowledged.
    await sleep(3_000);
    expect(writer.acknowledged.length).toBe(acknowledgedWhileCut);

    // Healed, node-a learns it lost the volume: its waiting writes fail, and no later one is acknowledged.
    await lab!.heal("a");
    await eventually(async () => writer.finished, "the writer on node-a to be refused", 90_000);
    expect(writer.acknowledged.length).toBe(acknowledgedWhileCut);
    expect(writer.refusals.length).toBe(writes - acknowledgedWhileCut);
    expect(
      agent("a")
        .logEntries()
        .some((entry) => entry.volume === created.id && entry.msg === "coordinator fenced"),
    ).toBe(true);

    // Every write node-a acknowledged is on node-b's side, and node-b's own write was not overwritten.
    await runClient("qemu-io", [
      "-f",
      "raw",
      agent("b").nbdUnixUri("logs"),
      ...writer.verifyCommands(),
      "-c",
      `read -P 0x5a ${contested} 64k`,
    ]);
    // node-a's replica may hold writes only it got (sent before it was cut off, never
    // acknowledged): the resync that brings it back undoes them, so all three end up identical.
    const final = await resynced("logs", "node-a");
    expect(final.attachedNode).toBe("node-b");
  });
});
