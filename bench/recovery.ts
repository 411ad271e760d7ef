import { mkdtemp, rm } from "node:fs/promises";
import { cpus, loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { clusterUp, type RunningCluster, tearDownCluster } from "../test/cli/strata-process.js";
import { run } from "../test/support/run.js";
import { row } from "./fio-jobs.js";

const MiB = 1024 ** 2;
const VOLUMES = Number(process.env.BENCH_VOLUMES ?? 20);
const VOLUME_MIB = Number(process.env.BENCH_VOLUME_MIB ?? 256);
const REPL = Number(process.env.BENCH_REPL ?? 2);
/** node-loss's Map runs this many repairs at a time: the baseline runs as many copies at once. */
const PARALLEL = 4;
const NODES = 6;
const ZONES = 3;
/** The share of each affected volume written while the node is away, in the reattach scenario. */
const OUTAGE_WRITE_SHARE = 0.05;
const REPLACEMENT_WAIT_MS = process.env.STRATA_REPLACEMENT_WAIT_MS ?? "20000";
const HEARTBEAT_TIMEOUT_MS = Number(process.env.STRATA_HEARTBEAT_TIMEOUT_MS ?? 10_000);
/** The local health sweep's period (infra/local/cloud.ts); every minute in AWS. */
const SWEEP_MS = Number(process.env.STRATA_HEALTH_SWEEP_MS ?? 2_000);
const POLL_MS = 500;
/** Longest any one scenario may take before the run is declared stuck. */
const SCENARIO_TIMEOUT_MS = 15 * 60_000;
/** Goals of the issue. */
const DETECTION_GOAL_MS = 15_000;
const THROUGHPUT_GOAL = 0.7;
/** What a Longhorn or Mayastor user waits before a rebuild starts (their defaults). */
const LONGHORN_WAIT_S = 600;
const MAYASTOR_WAIT_S = 600;

const STRATA = join(import.meta.dirname, "..", "bin", "strata.mjs");

interface ReplicaView {
  node: string;
  state: "in-sync" | "rebuilding" | "failed";
  zone?: string;
}

interface VolumeView {
  name: string;
  sizeBytes: number;
  allocatedBytes: number;
  attachedNode: string | null;
  replicas: ReplicaView[];
}

interface OperationView {
  id: string;
  kind: string;
  volumeName: string;
  node: string;
  state: string;
  error: string | null;
  params: { replicaId?: string };
  progress: { bytesDone: number; bytesTotal: number } | null;
  createdAt: string;
  startedAt: string | null;
  endedAt: string | null;
}

/** `strata workflow show --json`: the steps, and the raw history (for what FindReplacement said). */
interface ExecutionDetail {
  steps: { name: string; startedAfterMs: number; durationMs: number }[];
  events: unknown[];
}

interface ExecutionView {
  name: string;
  workflow: string;
  status: string;
  startDate: string;
  stopDate?: string;
}

/** The CLI against the cluster in `dir`, as an operator drives it. */
class Strata {
  constructor(readonly dir: string) {}

  cli(...args: string[]): Promise<string> {
    return run(process.execPath, [STRATA, "--dir", this.dir, ...args]);
  }

  async json<T>(...args: string[]): Promise<T> {
    return JSON.parse(await this.cli("--json", ...args)) as T;
  }

  async volumes(): Promise<VolumeView[]> {
    return (await this.json<{ volumes: VolumeView[] }>("volume", "list")).volumes;
  }

  async operations(): Promise<OperationView[]> {
    return (await this.json<{ operations: OperationView[] }>("operation", "list")).operations;
  }

  async executions(): Promise<ExecutionView[]> {
    return (await this.json<{ executions: ExecutionView[] }>("workflow", "list")).executions;
  }
}

const volumeName = (i: number) => `v${String(i + 1).padStart(2, "0")}`;

/**
 * Creates the volumes, each on a different node in turn so the replicas spread, attaches each (on
 * node-1, as one application node would) and fills it with random data.
 */
async function createVolumes(strata: Strata, dir: string): Promise<Map<string, string>> {
  const source = join(dir, "random.data");
  await run("sh", ["-c", `head -c ${VOLUME_MIB * MiB} /dev/urandom > ${source}`]);
  const uris = new Map<string, string>();
  for (let i = 0; i < VOLUMES; i++) {
    const name = volumeName(i);
    const node = `node-${(i % NODES) + 1}`;
    await strata.json(
      "--node",
      node,
      "volume",
      "create",
      name,
      "--size",
      `${VOLUME_MIB}Mi`,
      "--repl",
      String(REPL),
    );
    const { nbdUri } = await strata.json<{ nbdUri: string }>("volume", "attach", name);
    uris.set(name, nbdUri);
  }
  const started = performance.now();
  for (const uri of uris.values()) await run("nbdcopy", [source, uri]);
  const seconds = (performance.now() - started) / 1000;
  console.log(
    `filled ${VOLUMES} volumes × ${VOLUME_MIB} MiB (RF${REPL}) with random data through NBD in ${seconds.toFixed(0)} s ` +
      `(${((VOLUMES * VOLUME_MIB * MiB) / 1e6 / seconds).toFixed(0)} MB/s)`,
  );
  await rm(source);
  return uris;
}

/** Bytes copied by the operations, and their aggregate rate from the first start to the last end. */
interface CopyRate {
  operations: number;
  bytes: number;
  firstStart: number;
  lastEnd: number;
  bytesPerSecond: number;
}

function copyRate(operations: readonly OperationView[]): CopyRate {
  const bytes = operations.reduce((sum, operation) => sum + (operation.progress?.bytesDone ?? 0), 0);
  const starts = operations.map((operation) => Date.parse(operation.startedAt ?? operation.createdAt));
  const ends = operations.map((operation) => Date.parse(operation.endedAt ?? operation.createdAt));
  const firstStart = Math.min(...starts);
  const lastEnd = Math.max(...ends);
  return {
    operations: operations.length,
    bytes,
    firstStart,
    lastEnd,
    bytesPerSecond: bytes / Math.max((lastEnd - firstStart) / 1000, 0.001),
  };
}

/**
 * One operation per copy. A returning replica's resync can be asked for twice (the agent's own
 * reconciler and node-loss's PlanResyncs): the second waits for the copy under way and reports the
 * same bytes, or finds the replica in sync and copies none. Keeps, per replica, the one that copied most.
 */
function distinctCopies(operations: readonly OperationView[]): OperationView[] {
  const byCopy = new Map<string, OperationView>();
  for (const operation of operations) {
    const key = `${operation.kind} ${operation.volumeName} ${operation.params.replicaId ?? operation.id}`;
    const known = byCopy.get(key);
    const bytes = (candidate: OperationView | undefined) => candidate?.progress?.bytesDone ?? -1;
    if (known === undefined || bytes(operation) > bytes(known)) byCopy.set(key, operation);
  }
  return [...byCopy.values()];
}

/** Waits until every operation of `ids` has ended; fails if one did not succeed. */
async function operationsEnded(strata: Strata, ids: readonly string[]): Promise<OperationView[]> {
  const deadline = Date.now() + SCENARIO_TIMEOUT_MS;
  for (;;) {
    const mine = (await strata.operations()).filter((operation) => ids.includes(operation.id));
    if (mine.length === ids.length && mine.every((operation) => operation.endedAt !== null)) {
      const failed = mine.filter((operation) => operation.state !== "succeeded");
      if (failed.length > 0)
        throw new Error(
          `operations failed: ${failed.map((op) => `${op.id} ${op.state} ${op.error}`).join("; ")}`,
        );
      return mine;
    }
    if (Date.now() > deadline) throw new Error(`operations ${ids.join(", ")} did not end in time`);
    await sleep(POLL_MS);
  }
}

/** `volume ha-update --repl` on each volume at once; returns the operations once all have ended. */
async function haUpdate(strata: Strata, names: readonly string[], factor: number): Promise<OperationView[]> {
  const started = await Promise.all(
    names.map((name) =>
      strata.json<OperationView>("volume", "ha-update", name, "--repl", String(factor), "--no-wait"),
    ),
  );
  return operationsEnded(
    strata,
    started.map((operation) => operation.id),
  );
}

interface Baseline {
  single: CopyRate;
  parallel: CopyRate;
}

/**
 * One rebuild per volume, timed: a replica added (factor + 1) then dropped again; at RF3, the
 * largest factor, one dropped first and then added back, which is the copy timed.
 */
async function rebuildEach(strata: Strata, names: readonly string[]): Promise<CopyRate> {
  if (REPL < 3) {
    const rate = copyRate(await haUpdate(strata, names, REPL + 1));
    await haUpdate(strata, names, REPL);
    return rate;
  }
  await haUpdate(strata, names, REPL - 1);
  return copyRate(await haUpdate(strata, names, REPL));
}

/** The rebuild rate alone: one copy, then PARALLEL at once; each volume then back to its factor. */
async function baseline(strata: Strata): Promise<Baseline> {
  const names = Array.from({ length: Math.min(PARALLEL, VOLUMES) }, (_, i) => volumeName(i));
  const single = await rebuildEach(strata, [names[0]!]);
  const parallel = await rebuildEach(strata, names);
  await untilWhole(strata, new Set(), Date.now());
  return { single, parallel };
}

/**
 * The node other than node-1 (where the volumes are attached) and `not` with the most replicas.
 * With `down` (the nodes lost so far), only a node whose zone keeps another node up: losing the
 * last one of a zone is a zone failure, which az-failure recovers, not node-loss.
 */
async function busiestNode(
  strata: Strata,
  not: readonly string[],
  down?: readonly string[],
): Promise<string> {
  const { nodes } = await strata.json<{ nodes: { id: string; zone: string }[] }>("cluster", "status");
  const zoneOf = new Map(nodes.map((node) => [node.id, node.zone]));
  const eligible = (id: string) =>
    down === undefined ||
    nodes.some((other) => other.id !== id && !down.includes(other.id) && other.zone === zoneOf.get(id));
  const counts = new Map<string, number>();
  for (const volume of await strata.volumes())
    for (const replica of volume.replicas)
      if (replica.node !== "node-1" && !not.includes(replica.node) && eligible(replica.node))
        counts.set(replica.node, (counts.get(replica.node) ?? 0) + 1);
  const [node] = [...counts.entries()].sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]))[0] ?? [];
  if (node === undefined) throw new Error("no node left to fail");
  return node;
}

/** The node-loss execution for `node` started at or after `since` (start dates keep milliseconds). */
async function execution(
  strata: Strata,
  node: string,
  since: number,
  ended: boolean,
): Promise<ExecutionView> {
  const deadline = Date.now() + SCENARIO_TIMEOUT_MS;
  for (;;) {
    const found = (await strata.executions()).find(
      (candidate) =>
        candidate.workflow === "node-loss" &&
        candidate.name.startsWith(`node-loss-${node}-`) &&
        Date.parse(candidate.startDate) >= since - 1000 &&
        (!ended || candidate.status !== "RUNNING"),
    );
    if (found !== undefined) return found;
    if (Date.now() > deadline)
      throw new Error(`no node-loss execution for ${node} ${ended ? "ended" : "started"}`);
    await sleep(POLL_MS);
  }
}

/**
 * Waits until every volume has REPL in-sync replicas on nodes not in `lost` and none rebuilding;
 * returns when that was first seen.
 */
async function untilWhole(strata: Strata, lost: ReadonlySet<string>, since: number): Promise<number> {
  const deadline = since + SCENARIO_TIMEOUT_MS;
  for (;;) {
    const volumes = await strata.volumes();
    const whole = volumes.every((volume) => {
      const live = volume.replicas.filter((replica) => !lost.has(replica.node));
      const inSync = live.filter((replica) => replica.state === "in-sync").length;
      return inSync >= REPL && !live.some((replica) => replica.state === "rebuilding");
    });
    if (whole) return Date.now();
    if (Date.now() > deadline) throw new Error("the volumes did not get their replicas back in time");
    await sleep(POLL_MS);
  }
}

interface Outcome {
  scenario: string;
  node: string;
  detectionMs: number;
  /** From the failure to the first copy operation's start. */
  copyStartMs: number | undefined;
  fullMs: number;
  copy: CopyRate | undefined;
  kinds: string;
  /** Bytes a full re-replication of the node's replicas would have copied. */
  fullCopyBytes: number | undefined;
  executionStatus: string;
}

/**
 * Fails `node` with `fail`, then measures: detection, the copy operations started after it, and
 * when every volume was whole again. `during` runs right after the failure (writes in the outage).
 */
async function scenario(
  strata: Strata,
  name: string,
  node: string,
  fail: () => Promise<void>,
  options: { lost: ReadonlySet<string>; during?: () => Promise<void> },
): Promise<Outcome> {
  const before = new Set((await strata.operations()).map((operation) => operation.id));
  const failedAt = Date.now();
  await fail();
  const commandMs = Date.now() - failedAt;
  await options.during?.();
  const started = await execution(strata, node, failedAt, false);
  const detectionMs = Date.parse(started.startDate) - failedAt;
  console.log(
    `${name}: ${node} failed; node-loss ${started.name} started after ${seconds(detectionMs)} ` +
      `(the failure's command took ${seconds(commandMs)}, its CLI's start included)`,
  );
  const ended = await execution(strata, node, failedAt, true);
  const wholeAt = await untilWhole(strata, options.lost, failedAt);
  const copies = (await strata.operations()).filter(
    (operation) =>
      !before.has(operation.id) &&
      Date.parse(operation.createdAt) >= failedAt &&
      operation.state === "succeeded",
  );
  const distinct = distinctCopies(copies);
  const copy = distinct.length === 0 ? undefined : copyRate(distinct);
  const kinds = [...new Set(copies.map((operation) => operation.kind))].join(", ") || "-";
  for (const operation of copies) console.log(`  ${describeOperation(operation, failedAt)}`);
  // The last copy's end is when the last volume got its replicas back; the poll confirms it.
  const fullAt = copy === undefined ? wholeAt : Math.min(wholeAt, copy.lastEnd);
  console.log(`  ${await explainExecution(strata, ended.name)}`);
  const others = (await strata.executions()).filter(
    (other) => other.name !== ended.name && Date.parse(other.startDate) >= failedAt - 1000,
  );
  for (const other of others) {
    const at = Date.parse(other.startDate) - failedAt;
    console.log(`  also: ${other.workflow} ${other.name} ${other.status}, started after ${seconds(at)}`);
  }
  const stoppedMs = Date.parse(ended.stopDate ?? ended.startDate) - failedAt;
  console.log(
    `${name}: ${ended.name} ${ended.status} after ${seconds(stoppedMs)}; ${copies.length} operations (${kinds}) for ${distinct.length} copies; ` +
      `whole again after ${seconds(fullAt - failedAt)} (seen by polling after ${seconds(wholeAt - failedAt)})`,
  );
  return {
    scenario: name,
    node,
    detectionMs,
    copyStartMs: copy === undefined ? undefined : copy.firstStart - failedAt,
    fullMs: fullAt - failedAt,
    copy,
    kinds,
    fullCopyBytes: undefined,
    executionStatus: ended.status,
  };
}

/**
 * Where an execution's time went: its top-level steps ("FenceNode +0.1 s 0.3 s", Map iterations
 * left out) and what the replacement search said, e.g. why it waited.
 */
async function explainExecution(strata: Strata, name: string): Promise<string> {
  const detail = await strata.json<ExecutionDetail>("workflow", "show", name);
  const steps = new Map<string, { start: number; end: number }>();
  for (const step of detail.steps) {
    if (step.name.includes("›")) continue;
    const known = steps.get(step.name);
    const end = step.startedAfterMs + step.durationMs;
    steps.set(step.name, {
      start: Math.min(known?.start ?? step.startedAfterMs, step.startedAfterMs),
      end: Math.max(known?.end ?? end, end),
    });
  }
  const said = new Set(
    [
      ...JSON.stringify(detail.events).matchAll(
        /\\"status\\":\\"(found|expected|none)\\",[^}]*?\\"detail\\":\\"([^\\]*)/g,
      ),
    ].map((match) => `${match[1]}: ${match[2]}`),
  );
  const timeline = [...steps.entries()]
    .map(([step, { start, end }]) => `${step} +${seconds(start)}…+${seconds(end)}`)
    .join(", ");
  return `${name}: ${timeline}${said.size === 0 ? "" : `; replacement search: ${[...said].join(" | ")}`}`;
}

/** "resync v03 on node-1: 13 MiB, +4.1 s → +4.6 s" (times from the failure). */
function describeOperation(operation: OperationView, since: number): string {
  const at = (time: string | null) => (time === null ? "?" : `+${seconds(Date.parse(time) - since)}`);
  return (
    `${operation.kind} ${operation.volumeName} on ${operation.node}: ${mib(operation.progress?.bytesDone ?? 0)}, ` +
    `${at(operation.startedAt)} → ${at(operation.endedAt)}`
  );
}

/** Writes 1 MiB at every (1 / OUTAGE_WRITE_SHARE) MiB of the volume: ~5% of it, spread over it. */
async function writeShare(uri: string): Promise<number> {
  const step = Math.round(1 / OUTAGE_WRITE_SHARE);
  const commands: string[] = [];
  for (let mib = 0; mib + 1 <= VOLUME_MIB; mib += step)
    commands.push("-c", `write -P 0x5a ${mib * MiB} ${MiB}`);
  await run("qemu-io", ["-f", "raw", uri, ...commands]);
  return (commands.length / 2) * MiB;
}

/**
 * What the volumes' replicas hold (a full re-replication copies that much), asked of a node holding
 * an in-sync replica other than `not` (a volume's view counts the asked node's own replica).
 */
async function allocatedBytes(strata: Strata, volumes: readonly VolumeView[], not: string): Promise<number> {
  let sum = 0;
  for (const volume of volumes) {
    const holder = volume.replicas.find((replica) => replica.node !== not && replica.state === "in-sync");
    if (holder === undefined) throw new Error(`${volume.name} has no in-sync replica outside ${not}`);
    sum += (await strata.json<VolumeView>("--node", holder.node, "volume", "inspect", volume.name))
      .allocatedBytes;
  }
  return sum;
}

async function volumesOn(strata: Strata, node: string): Promise<VolumeView[]> {
  return (await strata.volumes()).filter((volume) =>
    volume.replicas.some((replica) => replica.node === node),
  );
}

const seconds = (ms: number) => `${(ms / 1000).toFixed(1)} s`;
const mbps = (bytesPerSecond: number) => `${(bytesPerSecond / 1e6).toFixed(0)} MB/s`;
const mib = (bytes: number) => `${(bytes / MiB).toFixed(0)} MiB`;

function printTable(base: Baseline, outcomes: readonly Outcome[]): void {
  const reference = base.parallel.bytesPerSecond;
  console.log(
    `\nbaseline, rebuild alone: 1 copy ${mib(base.single.bytes)} at ${mbps(base.single.bytesPerSecond)}; ` +
      `${base.parallel.operations} at once ${mib(base.parallel.bytes)} at ${mbps(reference)} together ` +
      `(ha-update --repl ${REPL < 3 ? REPL + 1 : REPL} on volumes of the run)\n`,
  );
  const widths = [16, 8, 11, 13, 9, 11, 8, 13, 8, 17, 8];
  console.log(
    row(widths, [
      "scenario",
      "node",
      "detection",
      "copy starts",
      "full",
      "copied",
      "kinds",
      "rate (copy)",
      "ratio",
      "rate (det→full)",
      "ratio",
    ]),
  );
  const ratio = (bytesPerSecond: number) => `${(bytesPerSecond / reference).toFixed(2)}×`;
  for (const outcome of outcomes) {
    const copy = outcome.copy;
    const afterDetection =
      copy === undefined
        ? undefined
        : copy.bytes / Math.max((outcome.fullMs - outcome.detectionMs) / 1000, 0.001);
    console.log(
      row(widths, [
        outcome.scenario,
        outcome.node,
        seconds(outcome.detectionMs),
        outcome.copyStartMs === undefined ? "-" : seconds(outcome.copyStartMs),
        seconds(outcome.fullMs),
        copy === undefined ? "0" : mib(copy.bytes),
        outcome.kinds,
        copy === undefined ? "-" : mbps(copy.bytesPerSecond),
        copy === undefined ? "-" : ratio(copy.bytesPerSecond),
        afterDetection === undefined ? "-" : mbps(afterDetection),
        afterDetection === undefined ? "-" : ratio(afterDetection),
      ]),
    );
  }
  for (const outcome of outcomes) {
    if (outcome.fullCopyBytes === undefined) continue;
    const copied = outcome.copy?.bytes ?? 0;
    console.log(
      `\n${outcome.scenario}: copied ${mib(copied)} where a full re-replication of ${outcome.node}'s replicas ` +
        `would copy ${mib(outcome.fullCopyBytes)}: ${mib(outcome.fullCopyBytes - copied)} saved ` +
        `(${((copied / outcome.fullCopyBytes) * 100).toFixed(1)}% copied)`,
    );
  }
  console.log(
    `\ngoals: detection ≤ ${DETECTION_GOAL_MS / 1000} s; copy rate ≥ ${THROUGHPUT_GOAL}× the rebuild alone ` +
      `(${PARALLEL} at once); heartbeat-only detection bounded by heartbeat timeout ${HEARTBEAT_TIMEOUT_MS / 1000} s ` +
      `+ sweep ${SWEEP_MS / 1000} s = ${(HEARTBEAT_TIMEOUT_MS + SWEEP_MS) / 1000} s`,
  );
  console.log(
    `others: Longhorn waits ${LONGHORN_WAIT_S} s (replica-replenishment-wait-interval) and Mayastor ` +
      `${MAYASTOR_WAIT_S / 60} min before a rebuild starts; Strata's full redundancy here: ` +
      outcomes.map((outcome) => `${outcome.scenario} ${seconds(outcome.fullMs)}`).join(", "),
  );
}

async function main(): Promise<void> {
  // RF1 volumes lose their only replica with the node: there is nothing to recover them from.
  if (REPL !== 2 && REPL !== 3) throw new Error(`BENCH_REPL must be 2 or 3, not ${process.env.BENCH_REPL}`);
  const dir = await mkdtemp(join(tmpdir(), "strata-bench-recovery-"));
  process.env.STRATA_REPLACEMENT_WAIT_MS = REPLACEMENT_WAIT_MS;
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED = "true";
  const strata = new Strata(dir);
  let cluster: RunningCluster | undefined;
  const interrupted = () => {
    void tearDownCluster(dir, cluster).finally(() => process.exit(1));
  };
  process.once("SIGINT", interrupted);
  process.once("SIGTERM", interrupted);
  try {
    const load = loadavg()
      .map((value) => value.toFixed(2))
      .join(" ");
    console.log(
      `${NODES} nodes in ${ZONES} zones on this machine (${cpus().length} CPUs, load average ${load}); heartbeat timeout ${HEARTBEAT_TIMEOUT_MS / 1000} s, sweep every ${SWEEP_MS / 1000} s, ` +
        `STRATA_REPLACEMENT_WAIT_MS=${REPLACEMENT_WAIT_MS} (node-loss waits this long for an expected replacement)`,
    );
    cluster = await clusterUp(dir, ["--nodes", String(NODES), "--zones", String(ZONES)]);
    const uris = await createVolumes(strata, dir);
    const base = await baseline(strata);
    console.log(
      `baseline: one copy ${mbps(base.single.bytesPerSecond)}, ${base.parallel.operations} at once ` +
        `${mbps(base.parallel.bytesPerSecond)}`,
    );
    const outcomes: Outcome[] = [];

    const lost = await busiestNode(strata, []);
    outcomes.push(
      await scenario(strata, "re-replication", lost, () => strata.cli("node", "kill", lost).then(() => {}), {
        lost: new Set([lost]),
      }),
    );

    const replaced = await busiestNode(strata, [lost]);
    const affected = await volumesOn(strata, replaced);
    const reattach = await scenario(
      strata,
      "reattach",
      replaced,
      () => strata.cli("node", "kill", replaced, "--replace").then(() => {}),
      {
        lost: new Set([lost]),
        during: async () => {
          const written = await Promise.all(affected.map((volume) => writeShare(uris.get(volume.name)!)));
          console.log(
            `reattach: wrote ${mib(written.reduce((a, b) => a + b, 0))} over ${affected.length} volumes while ${replaced} was away`,
          );
        },
      },
    );
    reattach.fullCopyBytes = await allocatedBytes(strata, affected, replaced);
    outcomes.push(reattach);

    const crashed = await busiestNode(strata, [lost, replaced], [lost]);
    outcomes.push(
      await scenario(
        strata,
        "heartbeat loss",
        crashed,
        () => strata.cli("node", "stop", crashed, "--kill").then(() => {}),
        { lost: new Set([lost, crashed]) },
      ),
    );
    printTable(base, outcomes);
  } finally {
    await tearDownCluster(dir, cluster);
  }
}

await main();
