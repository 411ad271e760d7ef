/**
 * `npm run demo`: Strata recovering by itself from a lost node, a replaced node and a lost zone, on
 * one machine, then backing a volume up to S3 and restoring it on a second cluster. A six-node, three-zone local cluster runs the real workflows (state-machines/ in the
 * local Step Functions, the Lambdas from their bundles, EventBridge rules matched locally); volumes
 * are written through NBD and checksummed; a writer records every write the cluster acknowledged.
 * Each failure is made the way AWS makes it, and the demo only watches: the events on the bus, the
 * workflows, the operations, and finally the data.
 */
import { spawn } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { formatSize } from "../core/units.js";
import {
  clusterUp,
  FAST_RECOVERY_ENV,
  type RunningCluster,
  tearDownCluster,
} from "../test/cli/strata-process.js";
import { DurableWriter } from "../test/support/durable-writer.js";
import { run } from "../test/support/run.js";

const MiB = 1024 * 1024;
const ROOT = new URL("..", import.meta.url).pathname;
const STRATA = join(ROOT, "bin", "strata.mjs");

/** Faster than production so the demo takes minutes, not quarter hours; what each one is, is in the README. */
const DEMO_ENV = {
  ...FAST_RECOVERY_ENV,
  STRATA_REPLACEMENT_WAIT_MS: "20000",
  // The cloudsnap workflow starts every 5 s instead of every minute; a policy's finest schedule is
  // still a minute, so the demo waits for the schedule's slots as a user would.
  STRATA_SCHEDULE_MS: "5000",
  AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: "true",
};

const WAL = "pg-wal";

interface DemoVolume {
  name: string;
  sizeBytes: number;
  replicas: 2 | 3;
  /** Bytes of random data written at the start. */
  written: number;
}

const VOLUMES: DemoVolume[] = [
  { name: "pg-data", sizeBytes: 256 * MiB, replicas: 3, written: 64 * MiB },
  { name: "mysql", sizeBytes: 256 * MiB, replicas: 3, written: 48 * MiB },
  { name: "cassandra", sizeBytes: 128 * MiB, replicas: 2, written: 32 * MiB },
  { name: "logs", sizeBytes: 128 * MiB, replicas: 2, written: 32 * MiB },
];

interface Phase {
  name: string;
  detectMs: number | undefined;
  redundantMs: number;
  bytesCopied: number;
  bytesSaved: number | undefined;
  writesLost: number;
}

const say = (line: string) => process.stdout.write(`\n\u001b[1m== ${line}\u001b[0m\n`);
const note = (line: string) => process.stdout.write(`   ${line}\n`);

async function main(): Promise<void> {
  await requireTools(["qemu-io", "nbdcopy"]);
  const dir = await mkdtemp(join(tmpdir(), "strata-demo-"));
  const strata = (...args: string[]) => run(process.execPath, [STRATA, "--dir", dir, ...args]);
  const json = async <T>(...args: string[]) => JSON.parse(await strata("--json", ...args)) as T;
  Object.assign(process.env, DEMO_ENV);

  say("Starting a local cluster: 6 nodes in 3 zones, with the local cloud (workflows, event bus, EC2)");
  const cluster = await clusterUp(dir, ["--nodes", "6", "--zones", "3"]);
  const events = followEvents(dir);
  try {
    say("Volumes: two RF3 and two RF2, random data written through NBD, checksummed");
    const uris = new Map<string, string>();
    const sums = new Map<string, string>();
    for (const volume of VOLUMES) {
      await strata(
        "volume",
        "create",
        volume.name,
        "--size",
        `${volume.sizeBytes / MiB}MiB`,
        "--repl",
        String(volume.replicas),
      );
      const { nbdUri } = await json<{ nbdUri: string }>("volume", "attach", volume.name);
      uris.set(volume.name, nbdUri);
      sums.set(volume.name, await fill(dir, nbdUri, volume));
      note(
        `${volume.name}: ${formatSize(volume.sizeBytes)}, RF${volume.replicas}, ${formatSize(volume.written)} written, sha256 ${sums.get(volume.name)!.slice(0, 12)}…`,
      );
    }
    // The write-ahead log of a database: where the recording writer writes during each failure.
    await strata("volume", "create", WAL, "--size", "64MiB", "--repl", "3");
    const walUri = (await json<{ nbdUri: string }>("volume", "attach", WAL)).nbdUri;
    note(
      `${WAL}: 64 MiB, RF3, written during every failure by a writer that records each acknowledged write`,
    );
    const verify = async () => {
      for (const volume of VOLUMES) {
        const now = await volumeSum(uris.get(volume.name)!, volume.sizeBytes);
        if (now !== sums.get(volume.name)) throw new Error(`${volume.name}: checksum changed`);
      }
      note("every volume's checksum is what was written");
    };
    const phases: Phase[] = [];
    const holderOf = async (volume: string, not: string[]) =>
      (await json<{ replicas: { node: string }[] }>("volume", "inspect", volume)).replicas
        .map((replica) => replica.node)
        .find((node) => !not.includes(node))!;

    // 1. A node is lost and no replacement comes: its volumes are re-replicated.
    const victim = await holderOf(WAL, ["node-1"]);
    phases.push(
      await phase(
        `Node loss: ${victim}'s instance is terminated`,
        dir,
        json,
        walUri,
        async () => {
          await strata("node", "kill", victim);
        },
        victim,
        "node-loss-",
      ),
    );
    await settle(json);
    await verify();

    // 2. A node is lost and its node group replaces it: the drives move, only changes are copied.
    const replaced = await holderOf(WAL, ["node-1", victim]);
    phases.push(
      await phase(
        `Node replaced: ${replaced}'s instance is terminated, the node group launches another`,
        dir,
        json,
        walUri,
        async () => {
          await strata("node", "kill", replaced, "--replace");
        },
        replaced,
        "node-loss-",
      ),
    );
    await settle(json);
    await verify();

    // 3. A whole zone fails, then returns.
    const zone = (
      await json<{ replicas: { node: string; zone: string }[] }>("volume", "inspect", WAL)
    ).replicas.find((replica) => replica.node !== "node-1")!.zone;
    phases.push(
      await phase(
        `Zone failure: ${zone} becomes unreachable, AWS starts a zonal autoshift`,
        dir,
        json,
        walUri,
        async () => {
          await strata("zone", "fail", zone);
        },
        zone,
        "az-fail-",
      ),
    );
    await settle(json);
    await verify();
    phases.push(
      await phase(
        `Zone return: ${zone} serves again, replicas are spread over three zones`,
        dir,
        json,
        walUri,
        async () => {
          await strata("zone", "restore", zone);
        },
        zone,
        "az-restore-",
      ),
    );
    await settle(json);
    await verify();

    const source = VOLUMES[0]!;
    say(`Scheduled cloudsnaps: ${source.name} backed up by its policy, then restored on a second cluster`);
    await cloudsnapsElsewhere(dir, cluster, strata, json, uris.get(source.name)!, source);

    say("Summary");
    printSummary(phases);
    const lost = phases.reduce((sum, p) => sum + p.writesLost, 0);
    if (lost > 0) throw new Error(`${lost} acknowledged writes were lost`);
  } finally {
    events.stop();
    await tearDownCluster(dir, cluster);
  }
}

/** Runs one failure under a recording writer, and measures the recovery until every volume is whole. */
async function phase(
  title: string,
  dir: string,
  json: <T>(...args: string[]) => Promise<T>,
  writeUri: string,
  fail: () => Promise<void>,
  subject: string,
  /** The executions this phase is recovered by: "node-loss-", "az-fail-" or "az-restore-". */
  execution: string,
): Promise<Phase> {
  say(title);
  const writer = new DurableWriter(writeUri, 200, 64 * 1024);
  await writer.reached(20);
  const started = Date.now();
  await fail();
  await writer.exited;
  const finished = await waitForEvent(
    dir,
    started,
    (event) =>
      event["detail-type"] === "Strata Recovery Finished" &&
      String(event.detail.execution).startsWith(execution) &&
      event.detail.subject === subject,
  );
  const redundantMs = await untilWhole(json, started);
  // Detected: the first workflow execution the failure started (its start, to the millisecond).
  const executionStarts = (
    await json<{ executions: { name: string; startDate: string }[] }>("workflow", "list")
  ).executions
    .filter((run) => run.name.startsWith(execution) && Date.parse(run.startDate) >= started)
    .map((run) => Date.parse(run.startDate));
  const detectedAt = executionStarts.length === 0 ? undefined : Math.min(...executionStarts);
  const operations = (await json<{ operations: OperationSummary[] }>("operation", "list")).operations.filter(
    (operation) => Date.parse(operation.createdAt) >= started,
  );
  const bytesCopied = operations.reduce((sum, operation) => sum + (operation.progress?.bytesDone ?? 0), 0);
  const resynced = operations.filter((operation) => operation.kind === "resync");
  const bytesSaved =
    resynced.length === 0
      ? undefined
      : (
          await Promise.all(
            resynced.map(
              async (operation) =>
                (
                  await json<{ allocatedBytes: number }>("volume", "inspect", operation.volumeName)
                ).allocatedBytes,
            ),
          )
        ).reduce((sum, allocated) => sum + allocated, 0) -
        resynced.reduce((sum, operation) => sum + (operation.progress?.bytesDone ?? 0), 0);
  const check = await run("qemu-io", ["-f", "raw", writeUri, ...writer.verifyCommands()]).then(
    () => 0,
    () => writer.acknowledged.length,
  );
  note(
    `workflow finished: ${(finished.detail.restored as string[]).length} restored, ${(finished.detail.failed as unknown[]).length} not`,
  );
  note(
    `${writer.acknowledged.length} writes acknowledged during the failure; ${check === 0 ? "every one is there" : "SOME ARE MISSING"}`,
  );
  return {
    name: title.split(":")[0]!,
    detectMs: detectedAt === undefined ? undefined : detectedAt - started,
    redundantMs,
    bytesCopied,
    bytesSaved,
    writesLost: check,
  };
}

/** What the demo reads of a cloudsnap (core/cloudsnaps.ts has all of it). */
interface CloudsnapSummary {
  id: string;
  createdAt: string;
  schedule?: string;
  incremental: boolean;
  dataBytes: number;
  scannedBytes: number;
  uploadedBytes: number;
  chunks: number;
  newChunks: number;
}

/** A minute-slot schedule plus the upload: the longest the demo waits for one scheduled cloudsnap. */
const SCHEDULED_CLOUDSNAP_WAIT_MS = 150_000;

/**
 * The volume follows a policy of a cloudsnap every minute keeping one: the cloudsnap workflow takes a
 * full one, more is written, the next slot takes an incremental and retention deletes the first.
 * Then a second cluster that shares only the bucket and the passphrase lists the volume's
 * cloudsnaps and restores the latest into a new volume, whose checksum must be the source's.
 */
async function cloudsnapsElsewhere(
  dir: string,
  cluster: RunningCluster,
  strata: (...args: string[]) => Promise<string>,
  json: <T>(...args: string[]) => Promise<T>,
  uri: string,
  volume: DemoVolume,
): Promise<void> {
  const describe = (c: CloudsnapSummary) =>
    `${c.incremental ? "incremental" : "full"} ${c.id} (${c.schedule ?? "by hand"}): read ${formatSize(c.scannedBytes)}, uploaded ${formatSize(c.uploadedBytes)} (${c.newChunks} new of ${c.chunks} chunks)`;
  const listed = async () =>
    (await json<{ cloudsnaps: CloudsnapSummary[] }>("cloudsnap", "list", volume.name)).cloudsnaps;
  /** The first scheduled cloudsnap taken after `after` (its snapshot holds everything written before). */
  const scheduledAfter = async (after: number) => {
    const deadline = Date.now() + SCHEDULED_CLOUDSNAP_WAIT_MS;
    for (;;) {
      const found = (await listed()).find((c) => c.schedule !== undefined && Date.parse(c.createdAt) > after);
      if (found !== undefined) return found;
      if (Date.now() > deadline) throw new Error(`no scheduled cloudsnap of ${volume.name} came`);
      await sleep(2000);
    }
  };

  await strata("policy", "create", "every-minute", "--interval", "1", "--retain", "1");
  await strata("volume", "policy", volume.name, "every-minute");
  note(
    `policy every-minute (a cloudsnap every minute, keep 1) assigned to ${volume.name}; waiting for its slot`,
  );
  const first = await scheduledAfter(0);
  note(describe(first));
  await run("qemu-io", ["-f", "raw", uri, "-c", `write -P 0x5a ${volume.sizeBytes / 2} ${4 * MiB}`]);
  const written = Date.now();
  note(`4 MiB written to ${volume.name}; waiting for the next slot`);
  const sum = await volumeSum(uri, volume.sizeBytes);
  const latest = await scheduledAfter(written);
  note(describe(latest));
  const deadline = Date.now() + SCHEDULED_CLOUDSNAP_WAIT_MS;
  while ((await listed()).some((c) => c.id === first.id)) {
    if (Date.now() > deadline) throw new Error(`retention did not delete ${first.id}`);
    await sleep(2000);
  }
  note(`retention (keep 1) deleted ${first.id}; ${latest.id} restores on its own`);
  // Nothing more is taken while the second cluster restores.
  await strata("volume", "policy", volume.name, "--none");

  const otherDir = await mkdtemp(join(tmpdir(), "strata-demo-elsewhere-"));
  const other = await clusterUp(otherDir, [
    "--nodes",
    "2",
    "--zones",
    "2",
    "--s3-endpoint",
    cluster.file.cloud!.endpoints["AWS_ENDPOINT_URL_S3"]!,
    "--cloudsnap-passphrase-file",
    join(dir, "cloudsnap-passphrase"),
  ]);
  try {
    const otherJson = async <T>(...args: string[]) =>
      JSON.parse(await run(process.execPath, [STRATA, "--dir", otherDir, "--json", ...args])) as T;
    const volumeId = latest.id.slice(0, 36);
    const { cloudsnaps } = await otherJson<{ cloudsnaps: unknown[] }>("cloudsnap", "list", volumeId);
    note(
      `a second cluster (2 nodes, its own state table) finds ${cloudsnaps.length} cloudsnaps of volume ${volumeId} in the bucket`,
    );
    const target = `${volume.name}-restored`;
    await otherJson("cloudsnap", "restore", latest.id, "--to", target, "--repl", "2", "--wait");
    const { nbdUri } = await otherJson<{ nbdUri: string }>("volume", "attach", target);
    const restored = await volumeSum(nbdUri, volume.sizeBytes);
    if (restored !== sum) throw new Error(`${target}: checksum ${restored}, the source's is ${sum}`);
    note(`restored there as ${target} (RF2): sha256 ${restored.slice(0, 12)}…, the same as ${volume.name}'s`);
  } finally {
    await tearDownCluster(otherDir, other);
  }
}

interface OperationSummary {
  kind: string;
  volumeName: string;
  createdAt: string;
  progress: { bytesDone: number } | null;
}

interface BusEvent {
  "detail-type": string;
  source: string;
  time: string;
  detail: Record<string, unknown>;
}

async function busEvents(dir: string): Promise<BusEvent[]> {
  const text = await readFile(join(dir, "events.jsonl"), "utf8").catch(() => "");
  return text
    .split("\n")
    .filter((line) => line !== "")
    .map((line) => JSON.parse(line) as BusEvent);
}

async function waitForEvent(
  dir: string,
  since: number,
  matches: (event: BusEvent) => boolean,
): Promise<BusEvent> {
  const deadline = Date.now() + 300_000;
  for (;;) {
    const found = (await busEvents(dir)).find(
      (event) => Date.parse(event.time) >= Math.floor(since / 1000) * 1000 && matches(event),
    );
    if (found !== undefined) return found;
    if (Date.now() > deadline) throw new Error("the workflow did not finish within 5 minutes");
    await sleep(250);
  }
}

/** Milliseconds from `since` until every volume has its replicas in sync. */
async function untilWhole(json: <T>(...args: string[]) => Promise<T>, since: number): Promise<number> {
  for (;;) {
    const { volumes } = await json<{
      volumes: { replicas: { state: string }[]; replicationFactor?: number }[];
    }>("cluster", "status");
    if (volumes.every((volume) => volume.replicas.every((replica) => replica.state === "in-sync")))
      return Date.now() - since;
    await sleep(250);
  }
}

/** Lets the cluster's background checkpoints catch up, so the next phase starts from a quiet cluster. */
const settle = async (json: <T>(...args: string[]) => Promise<T>) => {
  await untilWhole(json, Date.now());
  await sleep(3000);
};

/** Writes `volume.written` random bytes at the start of the volume; returns the whole volume's sha256. */
async function fill(dir: string, uri: string, volume: DemoVolume): Promise<string> {
  const file = join(dir, `${volume.name}.data`);
  const data = randomBytes(volume.written);
  await writeFile(file, data);
  await run("nbdcopy", [file, uri]);
  await rm(file);
  const hash = createHash("sha256")
    .update(data)
    .update(Buffer.alloc(volume.sizeBytes - volume.written));
  return hash.digest("hex");
}

async function volumeSum(uri: string, sizeBytes: number): Promise<string> {
  const child = spawn("nbdcopy", [uri, "-"], { stdio: ["ignore", "pipe", "inherit"] });
  const hash = createHash("sha256");
  let bytes = 0;
  for await (const chunk of child.stdout) {
    hash.update(chunk as Buffer);
    bytes += (chunk as Buffer).length;
  }
  if (bytes !== sizeBytes) throw new Error(`read ${bytes} bytes of ${uri}, expected ${sizeBytes}`);
  return hash.digest("hex");
}

/** Prints the bus's events as they are put, through `strata events --follow`. */
function followEvents(dir: string): { stop(): void } {
  const child = spawn(process.execPath, [STRATA, "--dir", dir, "events", "--follow"], {
    stdio: ["ignore", "pipe", "ignore"],
  });
  child.stdout.on("data", (chunk: Buffer) => {
    for (const line of chunk.toString().split("\n"))
      if (line.trim() !== "" && !line.startsWith("TIME")) note(`event  ${line}`);
  });
  return { stop: () => child.kill("SIGINT") };
}

async function requireTools(tools: string[]): Promise<void> {
  for (const tool of tools) {
    await run("sh", ["-c", `command -v ${tool}`]).catch(() => {
      throw new Error(
        `${tool} is missing: run \`npm run test:deps\` (as root) first, it installs the NBD clients`,
      );
    });
  }
}

function printSummary(phases: readonly Phase[]): void {
  const seconds = (ms: number | undefined) => (ms === undefined ? "-" : `${(ms / 1000).toFixed(1)} s`);
  const rows = [
    [
      "failure",
      "time to detect",
      "time to full redundancy",
      "bytes copied",
      "bytes the reattach saved",
      "acknowledged writes lost",
    ],
    ...phases.map((p) => [
      p.name,
      seconds(p.detectMs),
      seconds(p.redundantMs),
      formatSize(p.bytesCopied),
      p.bytesSaved === undefined ? "-" : formatSize(Math.max(0, p.bytesSaved)),
      String(p.writesLost),
    ]),
  ];
  const widths = rows[0]!.map((_, column) => Math.max(...rows.map((row) => row[column]!.length)));
  for (const row of rows) note(row.map((cell, column) => cell.padEnd(widths[column]!)).join("   "));
}

main().catch((error: unknown) => {
  process.stderr.write(`demo failed: ${(error as Error).message}\n`);
  process.exit(1);
});
