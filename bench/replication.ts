/**
 * Replicated volumes side by side in one run: the replication coordinator over RF1 (a local
 * replica only), RF2 (local + one remote) and RF3 (local + two remotes), next to nbdkit's file
 * plugin, with the same fio jobs as bench/nbd.ts; then the rebuild of a 1 GiB volume with
 * 256 MiB written onto a new, empty replica.
 *
 * The layout is one node of a 3-zone cluster on loopback: this process is node-a, the attached
 * node (real dynalite, the coordinator, its local replica, the NBD server); node-b and node-c are
 * replica servers in child processes, each with its own replicas on disk, as other agents are.
 *
 *   node --import tsx bench/replication.ts                  # full run (about 6 minutes)
 *   BENCH_RUNTIME=5 node --import tsx bench/replication.ts  # shorter
 *
 * For profiling: BENCH_JOBS=seq-write,rand-write runs only those jobs, BENCH_VOLUMES=rf3 only those
 * volumes (nbdkit is then skipped), BENCH_REBUILD=0 skips the rebuild, and BENCH_PROFILE=DIR writes
 * a V8 CPU profile of each replica server into DIR (run this process with --cpu-prof for its own).
 * The replica servers start with the agent's node flags (AGENT_NODE_FLAGS); BENCH_REPLICA_NODE_FLAGS
 * ="--flag …" replaces them (GC tuning experiments; "" for none).
 */
// First import: libuv sizes its thread pool once, when it first starts (as in the agent).
import "../agent/threadpool.js";
import { type ChildProcess, spawn } from "node:child_process";
import { randomUUID } from "node:crypto";
import { once } from "node:events";
import { mkdtempSync, rmSync } from "node:fs";
import { cpus, loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { setTimeout as sleep } from "node:timers/promises";
import { pino } from "pino";
import type { BlockDevice } from "../agent/block-device.js";
import type { ExportLease, ExportRegistry } from "../agent/exports.js";
import type { Logger } from "../agent/log.js";
import { type NbdServer, startNbdServer } from "../agent/nbd/server.js";
import { Drive } from "../agent/pool.js";
import { connectReplica, type ReplicaClient } from "../agent/replication/client.js";
import { VolumeCoordinator } from "../agent/replication/coordinator/coordinator.js";
import { StoreMembership } from "../agent/replication/coordinator/store-membership.js";
import {
  localReplicaHandle,
  type ReplicaTarget,
  remoteReplicaHandle,
} from "../agent/replication/replica-handle.js";
import { Replica } from "../agent/store/replica.js";
import { type LocalDynamoDb, startLocalDynamoDb } from "../core/state/local-dynamodb.js";
import { StateStore } from "../core/state/store.js";
import { AGENT_NODE_FLAGS } from "../infra/local/agent-entry.js";
import { checksum } from "../test/coordinator/checksum.js";
import { fio } from "../test/support/fio.js";
import { cpuCost, describeCost, sampleCpu } from "./cpu-usage.js";
import {
  JOBS as ALL_JOBS,
  describe,
  FIO_SETUP,
  fill,
  measure,
  type Rate,
  ratio,
  row,
  startNbdkit,
  WORKING_SET,
} from "./fio-jobs.js";

const MiB = 1024 ** 2;
const GiB = 1024 ** 3;
const VOLUME_BYTES = 1 * GiB;
/** The rebuild's source holds this much, spread over the whole volume. */
const REBUILD_WRITTEN = "256m";
const REBUILD_WRITTEN_BYTES = 256 * MiB;
/** Written with requests of this size, so the allocated runs are scattered, not one extent. */
const REBUILD_WRITE_BS = "64k";
/** ≥ 16 bytes; the peers of this run only. */
const SECRET = `bench-${randomUUID()}`;
/** The attached node: this process. */
const LOCAL_NODE = "node-a";
/** The two other zones' nodes, in child processes. */
const REMOTE_NODES = ["node-b", "node-c"] as const;
/** How long a replica server may take to start (tsx compiles on the way) and to stop. */
const CHILD_START_MS = 30_000;
const CHILD_STOP_MS = 5_000;
/** Goals of issue 3, printed next to the results. */
const WRITE_GOAL_RF3 = 0.4;
const REBUILD_GOAL_MBPS = 100;
/** How often the rebuild's phase is sampled, to time its join. */
const PHASE_POLL_MS = 5;

const quiet: Logger = pino({ level: "silent" });

/** BENCH_JOBS=seq-write,rand-write runs only the jobs whose names contain one of these (profiling). */
const JOB_FILTER = process.env.BENCH_JOBS?.split(",").filter((part) => part !== "");
const JOBS = ALL_JOBS.filter(
  (job) => JOB_FILTER === undefined || JOB_FILTER.some((part) => job.name.includes(part)),
);
/** BENCH_VOLUMES=rf3 measures only those volumes (of rf1, rf2, rf3) and not nbdkit. */
const VOLUME_FILTER = process.env.BENCH_VOLUMES?.split(",").filter((part) => part !== "");
const REBUILD = process.env.BENCH_REBUILD !== "0";
/** BENCH_PROFILE=DIR: each replica server writes a CPU profile there when it exits. */
const PROFILE_DIR = process.env.BENCH_PROFILE;
/** The replica servers start like agents do, unless BENCH_REPLICA_NODE_FLAGS says otherwise. */
const REPLICA_NODE_FLAGS =
  process.env.BENCH_REPLICA_NODE_FLAGS === undefined
    ? [...AGENT_NODE_FLAGS]
    : process.env.BENCH_REPLICA_NODE_FLAGS.split(" ").filter((flag) => flag !== "");

/** Cleanup steps, run last-registered first, exactly once, whether the run succeeded or not. */
class Teardown {
  private readonly steps: { what: string; step: () => Promise<void> }[] = [];
  private running: Promise<void> | undefined;

  add(what: string, step: () => Promise<void>): void {
    this.steps.push({ what, step });
  }

  run(): Promise<void> {
    this.running ??= (async () => {
      for (const { what, step } of this.steps.reverse()) {
        try {
          await step();
        } catch (error) {
          // Keep going: one failed step must not leave the other processes and directories behind.
          console.error(`cleanup: ${what} failed: ${error instanceof Error ? error.message : String(error)}`);
        }
      }
    })();
    return this.running;
  }
}

/** Waits for a child to exit; SIGKILLs it if it has not within `graceMs`. */
async function reap(child: ChildProcess, graceMs: number): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = once(child, "exit");
  const timer = setTimeout(() => child.kill("SIGKILL"), graceMs);
  try {
    await exited;
  } finally {
    clearTimeout(timer);
  }
}

/** A replica server in its own process (bench/replica-server-process.ts), driven over stdin. */
class RemoteNode {
  private listeningPort = 0;

  private constructor(
    readonly nodeId: string,
    private readonly child: ChildProcess,
    private readonly answers: AsyncIterator<string>,
  ) {}

  static async start(nodeId: string, dir: string): Promise<RemoteNode> {
    const profile = PROFILE_DIR === undefined ? [] : ["--cpu-prof", `--cpu-prof-dir=${PROFILE_DIR}`];
    const child = spawn(
      process.execPath,
      [
        ...REPLICA_NODE_FLAGS,
        ...profile,
        "--import",
        "tsx",
        join(import.meta.dirname, "replica-server-process.ts"),
        dir,
        SECRET,
      ],
      { stdio: ["pipe", "pipe", "inherit"] },
    );
    const node = new RemoteNode(
      nodeId,
      child,
      createInterface({ input: child.stdout! })[Symbol.asyncIterator](),
    );
    try {
      node.listeningPort = (JSON.parse(await node.nextLine(CHILD_START_MS)) as { port: number }).port;
    } catch (error) {
      await node.stop();
      throw error;
    }
    return node;
  }

  get port(): number {
    return this.listeningPort;
  }

  get pid(): number {
    return this.child.pid!;
  }

  createReplica(volumeId: string, replicaId: string, sizeBytes: number, epoch: number): Promise<void> {
    return this.command({ op: "create", volumeId, replicaId, sizeBytes, epoch });
  }

  connect(): Promise<ReplicaClient> {
    return connectReplica({ host: "127.0.0.1", port: this.port, secret: SECRET, log: quiet });
  }

  /** Ends stdin (the process closes its replicas and exits), then SIGKILL if it lingers. */
  async stop(): Promise<void> {
    this.child.stdin?.end();
    await reap(this.child, CHILD_STOP_MS);
  }

  private async command(command: Record<string, string | number>): Promise<void> {
    this.child.stdin!.write(`${JSON.stringify(command)}\n`);
    const answer = JSON.parse(await this.nextLine(CHILD_START_MS)) as { ok: boolean; error?: string };
    if (!answer.ok) throw new Error(`${this.nodeId}: ${command.op} failed: ${answer.error}`);
  }

  private async nextLine(timeoutMs: number): Promise<string> {
    const timeout = sleep(timeoutMs, "timeout" as const, { ref: false });
    const line = await Promise.race([this.answers.next(), timeout]);
    if (line === "timeout") throw new Error(`${this.nodeId}: no answer in ${timeoutMs} ms`);
    if (line.done === true) throw new Error(`${this.nodeId}: the replica server exited`);
    return line.value;
  }
}

/** The volumes served over NBD, by export name. */
class BenchExports implements ExportRegistry {
  private readonly devices = new Map<string, BlockDevice>();

  set(name: string, device: BlockDevice): void {
    this.devices.set(name, device);
  }

  delete(name: string): void {
    this.devices.delete(name);
  }

  names(): string[] {
    return [...this.devices.keys()];
  }

  open(name: string): ExportLease | undefined {
    const device = this.devices.get(name);
    if (device === undefined) return undefined;
    return { name, description: `bench volume ${name}`, device, release: () => {} };
  }
}

/** One replicated volume of the run: its record, its local replica and its coordinator. */
interface BenchVolume {
  name: string;
  volumeId: string;
  local: Replica;
  coordinator: VolumeCoordinator;
}

/** Everything node-a holds, plus the handles to the other nodes. */
class Cluster {
  private readonly drive: Drive;

  constructor(
    private readonly store: StateStore,
    private readonly localDir: string,
    readonly remotes: readonly RemoteNode[],
    readonly exports: BenchExports,
    private readonly teardown: Teardown,
  ) {
    this.drive = new Drive(localDir, Number.MAX_SAFE_INTEGER);
  }

  /**
   * A volume with a replica on node-a and one on each of `remotes`, all in sync at the first
   * epoch, attached here (the coordinator takes the epoch) and exported as `name`.
   */
  async createVolume(name: string, remotes: readonly RemoteNode[]): Promise<BenchVolume> {
    const nodes = [LOCAL_NODE, ...remotes.map((remote) => remote.nodeId)];
    const record = await this.store.volumes.create({
      name,
      sizeBytes: VOLUME_BYTES,
      replicationFactor: nodes.length,
      replicas: nodes.map((node) => ({ replicaId: `${name}-${node}`, node, state: "in-sync" })),
    });
    const local = await Replica.create(join(this.localDir, record.id), {
      volumeId: record.id,
      replicaId: `${name}-${LOCAL_NODE}`,
      sizeBytes: VOLUME_BYTES,
      epoch: record.epoch,
      allocator: this.drive,
      log: quiet,
    });
    this.teardown.add(`close ${name}'s local replica`, () => local.close());
    await Promise.all(
      remotes.map((remote) =>
        remote.createReplica(record.id, `${name}-${remote.nodeId}`, VOLUME_BYTES, record.epoch),
      ),
    );
    const replicas: ReplicaTarget[] = [
      {
        replicaId: `${name}-${LOCAL_NODE}`,
        nodeId: LOCAL_NODE,
        state: "in-sync",
        handle: localReplicaHandle(local),
      },
    ];
    for (const remote of remotes) {
      replicas.push({
        replicaId: `${name}-${remote.nodeId}`,
        nodeId: remote.nodeId,
        state: "in-sync",
        handle: remoteReplicaHandle(await remote.connect(), record.id),
      });
    }
    const coordinator = new VolumeCoordinator({
      volumeId: record.id,
      sizeBytes: VOLUME_BYTES,
      epoch: record.epoch,
      replicas,
      membership: new StoreMembership(this.store.volumes, record.id, LOCAL_NODE),
      log: quiet,
    });
    // Registered after the local replica's close, so it runs before it (teardown is LIFO).
    this.teardown.add(`close ${name}'s coordinator`, () => coordinator.close());
    await coordinator.attach();
    this.exports.set(name, coordinator);
    return { name, volumeId: record.id, local, coordinator };
  }
}

const seconds = (ms: number) => `${(ms / 1000).toFixed(2)} s`;

async function throughputTable(cluster: Cluster, nbdPort: number, nbdkitUri: string): Promise<void> {
  const [nodeB, nodeC] = cluster.remotes;
  const all = [
    { name: "rf1", remotes: [] },
    { name: "rf2", remotes: [nodeB!] },
    { name: "rf3", remotes: [nodeB!, nodeC!] },
  ].filter(({ name }) => VOLUME_FILTER === undefined || VOLUME_FILTER.includes(name));
  const volumes: BenchVolume[] = [];
  for (const { name, remotes } of all) volumes.push(await cluster.createVolume(name, remotes));
  const withNbdkit = VOLUME_FILTER === undefined;
  const uris = volumes.map((volume) => `nbd://127.0.0.1:${nbdPort}/${volume.name}`);
  for (const uri of [...uris, ...(withNbdkit ? [nbdkitUri] : [])]) await fill(uri);

  // Other work on a 2-core machine moves these numbers a lot: the load says how quiet it was.
  const load = loadavg()
    .map((value) => value.toFixed(2))
    .join(" ");
  console.log(
    `${FIO_SETUP}; ` +
      `RF2/RF3 replicas on replica servers in child processes over loopback TCP; ` +
      `${cpus().length} CPUs, load average before the jobs ${load}\n`,
  );
  const names = volumes.map((volume) => volume.name.toUpperCase());
  const widths = [22, ...names.map(() => 24), 24, 10, 10, 10];
  console.log(
    row(widths, [
      "job",
      ...names,
      ...(withNbdkit ? ["nbdkit file", "RF2/RF1", "RF3/RF1", "RF1/nbdkit"] : []),
    ]),
  );
  const pids = cluster.remotes.map((remote) => remote.pid);
  const costs: string[][] = [];
  for (const job of JOBS) {
    // Interleaved per job, so a drift of the machine over the run hits every column alike.
    const rates: Rate[] = [];
    const jobCosts: string[] = [];
    for (const [i, uri] of uris.entries()) {
      const before = sampleCpu(pids);
      const rate = await measure(uri, job);
      const after = sampleCpu(pids);
      const requests = (rate.iops * (after.at - before.at)) / 1000;
      const remotes = all[i]!.remotes.length;
      jobCosts.push(describeCost(cpuCost(before, after, requests, remotes), remotes));
      rates.push(rate);
    }
    costs.push([job.name, ...jobCosts]);
    if (!withNbdkit) {
      console.log(row(widths, [job.name, ...rates.map(describe)]));
      continue;
    }
    const [rf1, rf2, rf3] = rates as [Rate, Rate, Rate];
    const nbdkit = await measure(nbdkitUri, job);
    console.log(
      row(widths, [
        job.name,
        describe(rf1),
        describe(rf2),
        describe(rf3),
        describe(nbdkit),
        ratio(rf2, rf1),
        ratio(rf3, rf1),
        ratio(rf1, nbdkit),
      ]),
    );
  }
  console.log(`\ngoal: RF3/RF1 ≥ ${WRITE_GOAL_RF3}× for writes, ≈ 1× for reads`);
  console.log(
    "\nCPU per request: this process (coordinator, local replica, NBD) + the replica servers, " +
      "and cores busy on the whole machine (fio and other work included)\n",
  );
  console.log(row(widths, ["job", ...names]));
  for (const line of costs) console.log(row(widths, line));
  // The rebuild runs alone: these volumes' coordinators and connections would only add noise.
  for (const volume of volumes) {
    cluster.exports.delete(volume.name);
    await volume.coordinator.close();
  }
}

async function rebuildMeasurement(cluster: Cluster, nbdPort: number): Promise<void> {
  const [nodeB, nodeC] = cluster.remotes;
  const volume = await cluster.createVolume("rebuild", [nodeB!]);
  // Random 64 KiB writes over the whole volume, each block once (fio's random map).
  await fio(`nbd://127.0.0.1:${nbdPort}/${volume.name}`, [
    "--rw=randwrite",
    `--bs=${REBUILD_WRITE_BS}`,
    `--size=${WORKING_SET}`,
    `--io_size=${REBUILD_WRITTEN}`,
    "--iodepth=16",
  ]);
  await volume.coordinator.flush();

  const replicaId = `${volume.name}-${nodeC!.nodeId}`;
  await nodeC!.createReplica(volume.volumeId, replicaId, VOLUME_BYTES, volume.coordinator.epoch);
  const started = performance.now();
  const rebuild = volume.coordinator.addReplica({
    replicaId,
    nodeId: nodeC!.nodeId,
    handle: remoteReplicaHandle(await nodeC!.connect(), volume.volumeId),
  });
  // Rebuild reports only the copy phase's duration; the join's is seen by watching the phase.
  let joinedAt: number | undefined;
  const watch = setInterval(() => {
    if (joinedAt === undefined && rebuild.progress.phase !== "joining") joinedAt = performance.now();
  }, PHASE_POLL_MS);
  const result = await rebuild.done.finally(() => clearInterval(watch));
  const totalMs = performance.now() - started;
  const joinMs = (joinedAt ?? started) - started;
  const inSyncMs = totalMs - joinMs - result.durationMs;
  const mbps = result.bytesPerSecond / 1e6;
  console.log(
    `\nrebuild RF2→RF3 of a ${VOLUME_BYTES / GiB} GiB volume with ${REBUILD_WRITTEN_BYTES / MiB} MiB written ` +
      `(${REBUILD_WRITE_BS} random writes): copied ${(result.copiedBytes / MiB).toFixed(0)} MiB ` +
      `in ${seconds(result.durationMs)}, ${mbps.toFixed(0)} MB/s (goal ≥ ${REBUILD_GOAL_MBPS} MB/s); ` +
      `join ${seconds(joinMs)}, final flush + in-sync ${seconds(inSyncMs)}, total ${seconds(totalMs)}`,
  );

  // The new replica must hold exactly what the source holds, or the rate means nothing.
  const client = await nodeC!.connect();
  try {
    const [source, copy] = [
      await checksum(VOLUME_BYTES, (offset, length) => volume.local.read(offset, length)),
      await checksum(VOLUME_BYTES, (offset, length) => client.read(volume.volumeId, offset, length)),
    ];
    if (source !== copy) throw new Error(`the rebuilt replica differs from its source (${copy} ≠ ${source})`);
    console.log("rebuilt replica verified: identical SHA-256 of the whole volume on node-a and node-c");
  } finally {
    await client.close();
  }
}

async function main(): Promise<void> {
  const teardown = new Teardown();
  const interrupted = (signal: NodeJS.Signals) => {
    console.error(`\n${signal}: cleaning up`);
    void teardown.run().finally(() => process.exit(1));
  };
  process.once("SIGINT", interrupted);
  process.once("SIGTERM", interrupted);

  const root = mkdtempSync(join(tmpdir(), "strata-bench-repl-"));
  teardown.add("remove the temp dir", async () => rmSync(root, { recursive: true, force: true }));
  try {
    const dynamo: LocalDynamoDb = await startLocalDynamoDb();
    teardown.add("stop dynalite", () => dynamo.close());
    // Reached like every Strata process reaches DynamoDB: the standard variables, dummy credentials.
    process.env.AWS_ENDPOINT_URL_DYNAMODB = dynamo.endpoint;
    process.env.AWS_REGION = "local";
    process.env.AWS_ACCESS_KEY_ID = "local";
    process.env.AWS_SECRET_ACCESS_KEY = "local";
    // Node 20 is this project's engine; the SDK's notice about Node 22 is not the benchmark's output.
    process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED = "true";
    const store = new StateStore({ tableName: `strata-bench-${randomUUID()}` });
    teardown.add("close the state store client", async () => store.close());
    await store.ensureTable();

    const remotes: RemoteNode[] = [];
    for (const nodeId of REMOTE_NODES) {
      const remote = await RemoteNode.start(nodeId, join(root, nodeId));
      teardown.add(`stop ${nodeId}`, () => remote.stop());
      remotes.push(remote);
    }
    const exports = new BenchExports();
    const nbd: NbdServer = await startNbdServer({
      registry: exports,
      tcp: { host: "127.0.0.1", port: 0 },
      log: quiet,
    });
    teardown.add("stop the NBD server", () => nbd.close());
    const cluster = new Cluster(store, join(root, LOCAL_NODE), remotes, exports, teardown);

    const { nbdkit, uri: nbdkitUri } = await startNbdkit(join(root, "nbdkit.img"));
    teardown.add("stop nbdkit", () => {
      nbdkit.kill();
      return reap(nbdkit, CHILD_STOP_MS);
    });

    const nbdPort = nbd.tcpAddress!.port;
    await throughputTable(cluster, nbdPort, nbdkitUri);
    if (REBUILD) await rebuildMeasurement(cluster, nbdPort);
  } finally {
    await teardown.run();
  }
}

await main();
