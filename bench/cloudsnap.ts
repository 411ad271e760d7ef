/**
 * Cloudsnaps next to raw S3 in one run, on one s3rver endpoint (a child process on loopback): the
 * upload and the restore of a volume against parallel PutObject and GetObject of as many bytes,
 * in objects of a pack's size, as many at once as the engine puts packs; then incrementals after
 * 5% of the volume changed, and the requests each step made, counted on the S3 client.
 *
 * The source is a real replica (agent/store) in a temp dir, written, snapshotted and read the way
 * the agent feeds a cloudsnap (snapshotRuns + readSnapshot). A restore writes into a second, new
 * replica and flushes it, as the agent fills a new volume; the same restore into a sink that drops
 * the bytes says what the replica's writes cost.
 *
 *   npm run bench:cloudsnap                                   # 1 GiB volume, 3 rounds
 *   BENCH_VOLUME_MIB=256 BENCH_SPARSE_MIB=32 BENCH_ROUNDS=1 npm run bench:cloudsnap   # quick check
 *   BENCH_ONLY=incremental npm run bench:cloudsnap            # the incrementals alone, on one full upload
 */
// First import: libuv sizes its thread pool once, when it first starts (as in the agent, whose
// pool runs the chunks' compression as well as the replica's reads and writes).
import "../agent/threadpool.js";
import { randomBytes, randomUUID } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { cpus, loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { GetObjectCommand, PutObjectCommand, type S3Client } from "@aws-sdk/client-s3";
import { pino } from "pino";
import { DEFAULT_PACK_OPTIONS } from "../agent/cloudsnap/pack-writer.js";
import { CloudsnapRepository } from "../agent/cloudsnap/repository.js";
import { CHUNK_BYTES, type UploadSource } from "../agent/cloudsnap/upload.js";
import { VolumeKeyProtection } from "../agent/cloudsnap/volume-key.js";
import { Drive } from "../agent/pool.js";
import { Replica } from "../agent/store/replica.js";
import { CloudsnapBucket } from "../core/cloud/cloudsnap-bucket.js";
import type { CatalogEntry } from "../core/cloud/cloudsnap-catalog.js";
import { volumePrefix } from "../core/cloud/cloudsnap-layout.js";
import { AGENT_NODE_FLAGS } from "../infra/local/agent-entry.js";
import { type LocalS3, s3ClientAt, startLocalS3 } from "../infra/local/s3/local-s3.js";
import { random } from "../test/store/helpers.js";
import { type CpuCost, cpuCost, sampleCpu } from "./cpu-usage.js";
import { row } from "./fio-jobs.js";

const KiB = 1024;
const MiB = 1024 ** 2;
const VOLUME_BYTES = Number(process.env.BENCH_VOLUME_MIB ?? 1024) * MiB;
/** Case (a): this much random data in SPARSE_EXTENTS extents, the rest never written. */
const SPARSE_DATA_BYTES = Number(process.env.BENCH_SPARSE_MIB ?? 64) * MiB;
const SPARSE_EXTENTS = 4;
/** Each case is measured this many times; the table shows the median and the range. */
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
/** The source is written with requests of this size (a database's large writes). */
const FILL_WRITE_BYTES = 8 * MiB;
/** What the incrementals change, and the size of the scattered writes. */
const CHANGED_SHARE = 0.05;
const SCATTERED_WRITE_BYTES = 64 * KiB;
/** The raw side mirrors the engine: objects of a pack's size, as many at once as packs are put. */
const RAW_OBJECT_BYTES = DEFAULT_PACK_OPTIONS.targetBytes;
const RAW_CONCURRENCY = DEFAULT_PACK_OPTIONS.concurrency;
/** Longhorn's backup layout: one object per block of this size. */
const LONGHORN_BLOCK_BYTES = 2 * MiB;
/** Goals of issue 9. */
const THROUGHPUT_GOAL = 0.8;
const INCREMENTAL_GOAL = 1.1;
/** The scattered writes' offsets come from this seed, so runs change the same blocks. */
const SEED = 9;
/**
 * BENCH_ONLY=incremental skips the rounds against raw S3 and case (a): the fully written volume is
 * uploaded once, as the incrementals' base, so their numbers come in a fraction of the run's time.
 */
const INCREMENTAL_ONLY = process.env.BENCH_ONLY === "incremental";

const quiet = pino({ level: "silent" });
/** This process is the only writer of the bench's volumes: the lease is always confirmed. */
const SOLE_WRITER = { confirm: async () => {} };

/** Requests as the server saw them: per command, retries included, and the bytes of PUT bodies. */
interface Requests {
  commands: Map<string, number>;
  putBytes: number;
}

/**
 * Counts every request the client sends, in the deserialize step: it runs once per attempt (the
 * retry middleware sits above it), so a retried put counts twice, as the server and the bill see it.
 */
class RequestCounter {
  private readonly commands = new Map<string, number>();
  private putBytes = 0;

  constructor(client: S3Client) {
    client.middlewareStack.add(
      (next, context) => async (args) => {
        const command = context.commandName ?? "unknown";
        this.commands.set(command, (this.commands.get(command) ?? 0) + 1);
        const body = bodyOf(args.input);
        if (body !== undefined) this.putBytes += body.length;
        return next(args);
      },
      { step: "deserialize", name: "benchRequestCounter" },
    );
  }

  /** What was sent since `mark()` returned `since`. */
  since(since: Requests): Requests {
    const commands = new Map<string, number>();
    for (const [command, count] of this.commands) {
      const delta = count - (since.commands.get(command) ?? 0);
      if (delta > 0) commands.set(command, delta);
    }
    return { commands, putBytes: this.putBytes - since.putBytes };
  }

  mark(): Requests {
    return { commands: new Map(this.commands), putBytes: this.putBytes };
  }
}

/** A PutObject's body, when it is a buffer (every cloudsnap and raw put sends one). */
function bodyOf(input: object): Buffer | undefined {
  const body: unknown = "Body" in input ? input.Body : undefined;
  return Buffer.isBuffer(body) ? body : undefined;
}

const describeRequests = (requests: Requests) =>
  [...requests.commands].map(([command, n]) => `${n} ${command.replace(/Command$/, "")}`).join(", ") ||
  "none";

/** Runs `job(0..count-1)`, `concurrency` at a time. */
async function inParallel(jobs: number, concurrency: number, job: (index: number) => Promise<void>) {
  let next = 0;
  const worker = async () => {
    while (next < jobs) await job(next++);
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, jobs) }, worker));
}

/** One timed step: its rate over `bytes`, what it cost in CPU, what it sent. */
interface Measured {
  seconds: number;
  mibPerSecond: number;
  cpu: CpuCost;
  requests: Requests;
}

/** Times `work`, counting the CPU of this process and of s3rver per MiB of `bytes`. */
async function measured(
  s3: LocalS3,
  counter: RequestCounter,
  bytes: number,
  work: () => Promise<void>,
): Promise<Measured> {
  const requestsBefore = counter.mark();
  const cpuBefore = sampleCpu([s3.pid]);
  const started = performance.now();
  await work();
  const seconds = (performance.now() - started) / 1000;
  const cpu = cpuCost(cpuBefore, sampleCpu([s3.pid]), bytes / MiB, 1);
  return { seconds, mibPerSecond: bytes / MiB / seconds, cpu, requests: counter.since(requestsBefore) };
}

/** What the agent hands the engine: a snapshot's size, its runs (all, or changed since), its reads. */
function snapshotSource(replica: Replica, snapshotId: string, since?: string): UploadSource {
  return {
    sizeBytes: replica.sizeBytes,
    runs: replica.snapshotRuns(snapshotId, since),
    read: (offset, length) => replica.readSnapshot(snapshotId, offset, length),
  };
}

/** Writes random bytes over [offset, offset + length), in requests of FILL_WRITE_BYTES at most. */
async function writeRandom(replica: Replica, offset: number, length: number): Promise<void> {
  for (let done = 0; done < length; done += FILL_WRITE_BYTES) {
    const size = Math.min(FILL_WRITE_BYTES, length - done);
    await replica.write(offset + done, randomBytes(size), { fua: false });
  }
}

interface Case {
  name: string;
  /** Bytes of data the volume holds: what the raw side puts and gets. */
  dataBytes: number;
  fill(replica: Replica): Promise<void>;
}

const CASES: readonly Case[] = [
  {
    name: `(a) ${SPARSE_DATA_BYTES / MiB} MiB in ${SPARSE_EXTENTS} extents`,
    dataBytes: SPARSE_DATA_BYTES,
    fill: async (replica) => {
      // One extent in the middle of each quarter of the volume.
      const extent = SPARSE_DATA_BYTES / SPARSE_EXTENTS;
      const quarter = VOLUME_BYTES / SPARSE_EXTENTS;
      for (let i = 0; i < SPARSE_EXTENTS; i++) await writeRandom(replica, i * quarter + quarter / 2, extent);
    },
  },
  {
    name: "(b) fully written",
    dataBytes: VOLUME_BYTES,
    fill: (replica) => writeRandom(replica, 0, VOLUME_BYTES),
  },
];

/** The measurements of one round of one case. */
interface Round {
  upload: Measured;
  rawPut: Measured;
  restore: Measured;
  restoreToNull: Measured;
  rawGet: Measured;
  /** Of the restore's time, the final flush of the new replica. */
  flushSeconds: number;
  /** The repository's volume the round uploaded to, and its cloudsnap. */
  volumeId: string;
  entry: CatalogEntry;
}

/** Everything one run shares: the server, the counted client, the repository, where replicas go. */
class Bench {
  readonly bucket: CloudsnapBucket;
  readonly repository: CloudsnapRepository;
  readonly counter: RequestCounter;
  private readonly drive: Drive;

  constructor(
    readonly s3: LocalS3,
    readonly client: S3Client,
    private readonly dir: string,
  ) {
    this.counter = new RequestCounter(client);
    this.bucket = new CloudsnapBucket(client, s3.bucket);
    this.repository = new CloudsnapRepository(
      this.bucket,
      VolumeKeyProtection.passphraseOnly(async () => "bench passphrase"),
    );
    this.drive = new Drive(dir, Number.MAX_SAFE_INTEGER);
  }

  createReplica(name: string): Promise<Replica> {
    return Replica.create(join(this.dir, name), {
      volumeId: randomUUID(),
      replicaId: randomUUID(),
      sizeBytes: VOLUME_BYTES,
      epoch: 1,
      allocator: this.drive,
      log: quiet,
    });
  }

  async destroyReplica(replica: Replica, name: string): Promise<void> {
    await replica.close();
    await Replica.destroy(join(this.dir, name), this.drive);
  }

  /** A cloudsnap of the replica's snapshot, for the repository's volume `volumeId`. */
  take(volumeId: string, replica: Replica, snapshotId: string, since?: string): Promise<CatalogEntry> {
    return this.repository.take(
      {
        volumeId,
        volumeName: "bench",
        replicationFactor: 1,
        snapshotId,
        source: snapshotSource(replica, snapshotId, since),
        ...(since === undefined ? {} : { since }),
      },
      SOLE_WRITER,
    );
  }

  /**
   * A restore into the new replica `target`, flushed at the end, as the agent fills a new volume;
   * resolves to the seconds the flush took (the disk's share).
   */
  async restore(cloudsnapId: string, target: Replica): Promise<number> {
    await this.repository.restore(cloudsnapId, (offset, data) => target.write(offset, data, { fua: false }));
    const flushing = performance.now();
    await target.flush();
    return (performance.now() - flushing) / 1000;
  }

  /**
   * Derives the passphrase's key (scrypt, once per process, as in the agent) and opens the
   * client's connections, so that neither is counted in the first measurement.
   */
  async warmUp(): Promise<void> {
    const replica = await this.createReplica("warm-up");
    await replica.write(0, randomBytes(CHUNK_BYTES), { fua: false });
    const snapshot = await replica.snapshot("warm-up");
    const volumeId = randomUUID();
    const entry = await this.take(volumeId, replica, snapshot.id);
    await this.repository.restore(entry.id, async () => {});
    await this.destroyReplica(replica, "warm-up");
    await this.forget(volumeId);
  }

  async rawPut(prefix: string, bytes: number): Promise<string[]> {
    const body = randomBytes(Math.min(RAW_OBJECT_BYTES, bytes));
    const keys = Array.from({ length: Math.ceil(bytes / RAW_OBJECT_BYTES) }, (_, i) => `${prefix}${i}`);
    await inParallel(keys.length, RAW_CONCURRENCY, async (i) => {
      const length = Math.min(RAW_OBJECT_BYTES, bytes - i * RAW_OBJECT_BYTES);
      await this.client.send(
        new PutObjectCommand({ Bucket: this.s3.bucket, Key: keys[i], Body: body.subarray(0, length) }),
      );
    });
    return keys;
  }

  async rawGet(keys: readonly string[]): Promise<void> {
    await inParallel(keys.length, RAW_CONCURRENCY, async (i) => {
      const response = await this.client.send(new GetObjectCommand({ Bucket: this.s3.bucket, Key: keys[i] }));
      await response.Body?.transformToByteArray();
    });
  }

  /** Deletes a volume's cloudsnap objects (listed: no measurement counts this). */
  async forget(volumeId: string): Promise<void> {
    const keys: string[] = [];
    for await (const { key } of this.bucket.list(volumePrefix(volumeId))) keys.push(key);
    await this.bucket.delete(keys);
  }
}

/** Fails the run if the restored replica differs from the snapshot it was uploaded from. */
async function checkRestored(source: Replica, snapshotId: string, target: Replica): Promise<void> {
  for (let offset = 0; offset < VOLUME_BYTES; offset += FILL_WRITE_BYTES) {
    const length = Math.min(FILL_WRITE_BYTES, VOLUME_BYTES - offset);
    const [expected, actual] = await Promise.all([
      source.readSnapshot(snapshotId, offset, length),
      target.read(offset, length),
    ]);
    if (!expected.equals(actual)) throw new Error(`the restored volume differs from the source at ${offset}`);
  }
}

/** Runs `a` and `b` one after the other, `a` first or not; the results in the order a, b. */
async function inOrder<A, B>(aFirst: boolean, a: () => Promise<A>, b: () => Promise<B>): Promise<[A, B]> {
  if (aFirst) {
    const first = await a();
    return [first, await b()];
  }
  const first = await b();
  return [await a(), first];
}

/**
 * One round of a case: the engine's upload and the raw puts, the restore into a new replica and
 * the raw gets (engine or raw first, alternating from round to round, so neither always meets a
 * server the other left busy writing back), then the restore into a null sink. Every round uploads
 * to a volume id of its own: a second cloudsnap of one volume would dedupe every chunk.
 */
async function runRound(bench: Bench, source: Replica, snapshotId: string, kase: Case, n: number) {
  const volumeId = randomUUID();
  const bytes = kase.dataBytes;
  const time = (work: () => Promise<void>) => measured(bench.s3, bench.counter, bytes, work);
  let entry: CatalogEntry | undefined;
  let rawKeys: string[] = [];
  const engineFirst = n % 2 === 0;
  const [upload, rawPut] = await inOrder(
    engineFirst,
    () =>
      time(async () => {
        entry = await bench.take(volumeId, source, snapshotId);
      }),
    () =>
      time(async () => {
        rawKeys = await bench.rawPut(`raw/${volumeId}/`, bytes);
      }),
  );
  if (entry === undefined) throw new Error("the upload returned no cloudsnap");
  const taken = entry;
  let flushSeconds = 0;
  const targetName = `restore-${n}`;
  const target = await bench.createReplica(targetName);
  const [restore, rawGet] = await inOrder(
    engineFirst,
    () =>
      time(async () => {
        flushSeconds = await bench.restore(taken.id, target);
      }),
    () => time(() => bench.rawGet(rawKeys)),
  );
  await checkRestored(source, snapshotId, target);
  await bench.destroyReplica(target, targetName);
  const restoreToNull = await time(async () => {
    await bench.repository.restore(taken.id, async () => {});
  });
  await bench.bucket.delete(rawKeys);
  const result: Round = {
    upload,
    rawPut,
    restore,
    restoreToNull,
    rawGet,
    flushSeconds,
    volumeId,
    entry: taken,
  };
  return result;
}

interface Incremental {
  name: string;
  changedBytes: number;
  entry: CatalogEntry;
  measured: Measured;
}

/** Changes the source with `change` (which says how many bytes it wrote), then uploads an incremental. */
async function runIncremental(
  bench: Bench,
  source: Replica,
  volumeId: string,
  since: string,
  name: string,
  change: () => Promise<number>,
): Promise<Incremental> {
  const changedBytes = await change();
  const snapshot = await source.snapshot(`incremental-${randomUUID()}`);
  let entry: CatalogEntry | undefined;
  const result = await measured(bench.s3, bench.counter, changedBytes, async () => {
    entry = await bench.take(volumeId, source, snapshot.id, since);
  });
  if (entry === undefined) throw new Error("the incremental returned no cloudsnap");
  return { name, changedBytes, entry, measured: result };
}

/** CHANGED_SHARE of the volume as whole chunks spread evenly: the best case for 1 MiB chunks. */
async function changeAlignedExtents(source: Replica): Promise<number> {
  const chunks = VOLUME_BYTES / CHUNK_BYTES;
  const extents = Math.round(CHANGED_SHARE * chunks);
  const stride = Math.floor(chunks / extents);
  for (let i = 0; i < extents; i++) await writeRandom(source, i * stride * CHUNK_BYTES, CHUNK_BYTES);
  return extents * CHUNK_BYTES;
}

/**
 * CHANGED_SHARE of the volume as 64 KiB writes at distinct random places: a database's page writes.
 * Each `seed` picks other places: a second round grows the deltas the first one made.
 */
async function changeScattered(source: Replica, seed: number): Promise<number> {
  const slots = VOLUME_BYTES / SCATTERED_WRITE_BYTES;
  const writes = Math.round(CHANGED_SHARE * slots);
  const rng = random(seed);
  const chosen = new Set<number>();
  while (chosen.size < writes) chosen.add(rng.int(slots));
  for (const slot of chosen) {
    await source.write(slot * SCATTERED_WRITE_BYTES, randomBytes(SCATTERED_WRITE_BYTES), { fua: false });
  }
  return writes * SCATTERED_WRITE_BYTES;
}

const median = (values: readonly number[]) => {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2;
};
const spread = (values: readonly number[], digits: number) =>
  values.length === 1
    ? values[0]!.toFixed(digits)
    : `${median(values).toFixed(digits)} (${Math.min(...values).toFixed(digits)}–${Math.max(...values).toFixed(digits)})`;
const mib = (bytes: number) => `${(bytes / MiB).toFixed(1)} MiB`;
/** CPU seconds per GiB moved: this process (the engine or the raw client), then s3rver. */
const cpuPerGiB = (cost: CpuCost) =>
  `${((cost.selfUs * 1024) / 1e6).toFixed(2)} + ${((cost.remoteUs * 1024) / 1e6).toFixed(2)} s/GiB, ${cost.machineCores.toFixed(2)} cores busy`;
const verdict = (met: boolean) => (met ? "met" : "MISSED");

function printRound(kase: Case, n: number, r: Round): void {
  const line = (what: string, m: Measured) =>
    `  ${what.padEnd(22)}${`${m.mibPerSecond.toFixed(0)} MiB/s`.padEnd(12)}${`${m.seconds.toFixed(2)} s`.padEnd(10)}CPU ${cpuPerGiB(m.cpu)}; ${describeRequests(m.requests)}`;
  console.log(`${kase.name}, round ${n + 1}${n % 2 === 0 ? " (engine first)" : " (raw first)"}`);
  console.log(line("engine upload", r.upload));
  console.log(line("raw PutObject", r.rawPut));
  console.log(`${line("engine restore", r.restore)} (flush ${r.flushSeconds.toFixed(2)} s)`);
  console.log(line("raw GetObject", r.rawGet));
  console.log(line("restore to null sink", r.restoreToNull));
}

type Pick = (round: Round) => Measured;

function printSummary(kase: Case, rounds: readonly Round[]): void {
  const widths = [26, 20, 20, 20, 12];
  /** One row: the engine's rates, the raw ones, their ratios (per round), and the goal's verdict. */
  const compare = (what: string, ours: Pick, raw: Pick, goal: boolean) => {
    const ratios = rounds.map((r) => ours(r).mibPerSecond / raw(r).mibPerSecond);
    const cells = [
      what,
      spread(
        rounds.map((r) => ours(r).mibPerSecond),
        0,
      ),
      spread(
        rounds.map((r) => raw(r).mibPerSecond),
        0,
      ),
      spread(ratios, 2),
    ];
    console.log(row(widths, goal ? [...cells, verdict(median(ratios) >= THROUGHPUT_GOAL)] : cells));
  };
  console.log(`\n${kase.name}: ${mib(kase.dataBytes)} of data, ${rounds.length} round(s), median (min–max)`);
  console.log(row(widths, ["", "engine MiB/s", "raw MiB/s", "engine/raw", `goal ≥ ${THROUGHPUT_GOAL}×`]));
  compare(
    "upload vs PutObject",
    (r) => r.upload,
    (r) => r.rawPut,
    true,
  );
  compare(
    "restore vs GetObject",
    (r) => r.restore,
    (r) => r.rawGet,
    true,
  );
  compare(
    "restore, null sink",
    (r) => r.restoreToNull,
    (r) => r.rawGet,
    false,
  );
  const cpu = (pick: Pick) => {
    const costs = rounds.map((r) => pick(r).cpu);
    const perGiB = (us: number) => (us * 1024) / 1e6;
    return `${perGiB(median(costs.map((c) => c.selfUs))).toFixed(1)} + ${perGiB(median(costs.map((c) => c.remoteUs))).toFixed(1)}`;
  };
  console.log(
    `CPU s/GiB (this process + s3rver), median: upload ${cpu((r) => r.upload)}, PutObject ${cpu((r) => r.rawPut)}; ` +
      `restore ${cpu((r) => r.restore)}, to null ${cpu((r) => r.restoreToNull)}, GetObject ${cpu((r) => r.rawGet)}`,
  );
  const last = rounds.at(-1)!;
  const blocks = Math.ceil(kase.dataBytes / LONGHORN_BLOCK_BYTES);
  console.log(
    `requests, full cloudsnap: ${describeRequests(last.upload.requests)} (${last.entry.chunks} chunks, ${mib(last.entry.uploadedBytes)} in packs); one object per 2 MiB block: ${blocks} PUTs`,
  );
  console.log(
    `requests, restore: ${describeRequests(last.restore.requests)}; one object per 2 MiB block: ${blocks} GETs`,
  );
}

function printIncremental(result: Incremental): void {
  const { entry, changedBytes, measured: m } = result;
  const packs = entry.uploadedBytes / changedBytes;
  const all = m.requests.putBytes / changedBytes;
  console.log(
    `incremental, ${result.name}: changed ${mib(changedBytes)}, read ${mib(entry.scannedBytes)} (${entry.newChunks} new chunks), ` +
      `put ${mib(entry.uploadedBytes)} in packs (${packs.toFixed(2)}×), ${mib(m.requests.putBytes)} in all PUTs (${all.toFixed(2)}×); ` +
      `goal ≤ ${INCREMENTAL_GOAL}×: ${verdict(all <= INCREMENTAL_GOAL)}; ${m.seconds.toFixed(2)} s; ${describeRequests(m.requests)}`,
  );
}

async function main(): Promise<void> {
  // Node 20 is this project's engine; the SDK's notice about Node 22 is not the benchmark's output.
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED = "true";
  const dir = await mkdtemp(join(tmpdir(), "strata-bench-cloudsnap-"));
  const s3 = await startLocalS3({ dir: join(dir, "s3"), bucket: "bench-cloudsnaps" });
  const client = s3ClientAt(s3.endpoint);
  try {
    const bench = new Bench(s3, client, join(dir, "replicas"));
    const flags = AGENT_NODE_FLAGS.filter((flag) => process.execArgv.includes(flag));
    console.log(
      `${cpus().length} cores, load average ${loadavg()
        .map((load) => load.toFixed(2))
        .join(
          " ",
        )}; volume ${mib(VOLUME_BYTES)}, chunks ${mib(CHUNK_BYTES)}, packs ${mib(RAW_OBJECT_BYTES)} ` +
        `${RAW_CONCURRENCY} at once; s3rver pid ${s3.pid} at ${s3.endpoint}; agent node flags: ${flags.join(" ") || "none"}`,
    );
    console.log("CPU: this process + s3rver, per GiB moved\n");
    await bench.warmUp();
    for (const kase of CASES) {
      const fullyWritten = kase.dataBytes === VOLUME_BYTES;
      if (INCREMENTAL_ONLY && !fullyWritten) continue;
      const source = await bench.createReplica("source");
      await kase.fill(source);
      const snapshot = await source.snapshot("full");
      const base = INCREMENTAL_ONLY
        ? await uploadBase(bench, source, snapshot.id)
        : await runRounds(bench, source, snapshot.id, kase);
      if (fullyWritten) await runIncrementals(bench, source, base, snapshot.id);
      else await bench.forget(base);
      console.log("");
      await bench.destroyReplica(source, "source");
    }
  } finally {
    client.destroy();
    await s3.close();
    await rm(dir, { recursive: true, force: true });
  }
}

/**
 * The rounds of a case against raw S3; resolves to the volume of the last round's cloudsnap, kept
 * as the incrementals' base.
 */
async function runRounds(bench: Bench, source: Replica, snapshotId: string, kase: Case): Promise<string> {
  const rounds: Round[] = [];
  for (let n = 0; n < ROUNDS; n++) {
    const result = await runRound(bench, source, snapshotId, kase, n);
    printRound(kase, n, result);
    rounds.push(result);
    if (n < ROUNDS - 1) await bench.forget(result.volumeId);
  }
  printSummary(kase, rounds);
  return rounds.at(-1)!.volumeId;
}

/** One full cloudsnap of the source, measured, as the incrementals' base; resolves to its volume. */
async function uploadBase(bench: Bench, source: Replica, snapshotId: string): Promise<string> {
  const volumeId = randomUUID();
  let entry: CatalogEntry | undefined;
  const upload = await measured(bench.s3, bench.counter, VOLUME_BYTES, async () => {
    entry = await bench.take(volumeId, source, snapshotId);
  });
  console.log(
    `full cloudsnap (the incrementals' base): ${upload.mibPerSecond.toFixed(0)} MiB/s, CPU ${cpuPerGiB(upload.cpu)}; ` +
      `${entry?.chunks} chunks; ${describeRequests(upload.requests)}`,
  );
  return volumeId;
}

/**
 * The incrementals on the full cloudsnap of `volumeId`: aligned extents, scattered writes, scattered
 * writes again (cumulative deltas); then a restore of the last one into a null sink, which reads
 * bases and deltas.
 */
async function runIncrementals(bench: Bench, source: Replica, volumeId: string, fullSnapshot: string) {
  const aligned = await runIncremental(bench, source, volumeId, fullSnapshot, "1 MiB-aligned extents", () =>
    changeAlignedExtents(source),
  );
  printIncremental(aligned);
  const scattered = await runIncremental(
    bench,
    source,
    volumeId,
    aligned.entry.snapshotId,
    "scattered 64 KiB writes",
    () => changeScattered(source, SEED),
  );
  printIncremental(scattered);
  const again = await runIncremental(
    bench,
    source,
    volumeId,
    scattered.entry.snapshotId,
    "scattered 64 KiB writes again (cumulative deltas)",
    () => changeScattered(source, SEED + 1),
  );
  printIncremental(again);
  const restore = await measured(bench.s3, bench.counter, VOLUME_BYTES, async () => {
    await bench.repository.restore(again.entry.id, async () => {});
  });
  console.log(
    `restore of the last incremental to a null sink: ${restore.mibPerSecond.toFixed(0)} MiB/s, CPU ${cpuPerGiB(restore.cpu)}; ` +
      describeRequests(restore.requests),
  );
  await bench.forget(volumeId);
}

await main();
