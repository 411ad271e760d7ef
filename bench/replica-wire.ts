/**
 * The replication wire path alone, without NBD or fio: this process sends WRITE (or READ) requests
 * to one replica server in a child process, as a coordinator does, keeping `depth` of them in
 * flight for a few seconds, and reports the rate and the CPU each request costs both processes.
 * CPU per request moves far less with the machine's load than the rate does, so this is the
 * measure to compare two versions of the client, the frame writer or the replica server by.
 *
 *   node --import tsx bench/replica-wire.ts                 # 1 MiB writes qd8, then 4 KiB writes qd32
 *   WIRE_JOBS=write:1m:8 WIRE_SECONDS=5 node --import tsx bench/replica-wire.ts
 *   WIRE_SERVER_FLAGS="--cpu-prof --cpu-prof-dir=/tmp/prof" …   # node flags for the server process
 */
// First import: libuv sizes its thread pool once, when it first starts (as in the agent).
import "../agent/threadpool.js";
import { type ChildProcess, spawn } from "node:child_process";
import { randomBytes, randomUUID } from "node:crypto";
import { once } from "node:events";
import { mkdtempSync, rmSync } from "node:fs";
import { loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { pino } from "pino";
import { returnIoBuffer } from "../agent/io-buffers.js";
import { connectReplica } from "../agent/replication/client.js";
import { cpuCost, sampleCpu } from "./cpu-usage.js";

const SECRET = `wire-${randomUUID()}`;
const VOLUME_BYTES = 1024 ** 3;
const SECONDS = Number(process.env.WIRE_SECONDS ?? 8);
const JOBS = (process.env.WIRE_JOBS ?? "write:1m:8,write:4k:32").split(",").map(parseJob);
const SERVER_FLAGS = (process.env.WIRE_SERVER_FLAGS ?? "").split(" ").filter((flag) => flag !== "");

interface Job {
  op: "write" | "read";
  size: number;
  depth: number;
  label: string;
}

function parseJob(text: string): Job {
  const [op, size, depth] = text.split(":");
  const units: Record<string, number> = { k: 1024, m: 1024 ** 2 };
  const bytes = Number.parseInt(size!, 10) * (units[size!.at(-1)!.toLowerCase()] ?? 1);
  if ((op !== "write" && op !== "read") || !(bytes > 0) || !(Number(depth) > 0)) {
    throw new Error(`a job is write|read:SIZE:DEPTH, not ${text}`);
  }
  return { op, size: bytes, depth: Number(depth), label: `${op} ${size} qd${depth}` };
}

async function startServer(dir: string): Promise<{ child: ChildProcess; port: number }> {
  const child = spawn(
    process.execPath,
    [...SERVER_FLAGS, "--import", "tsx", join(import.meta.dirname, "replica-server-process.ts"), dir, SECRET],
    { stdio: ["pipe", "pipe", "inherit"] },
  );
  const lines = createInterface({ input: child.stdout! })[Symbol.asyncIterator]();
  // Only the JSON lines are the server's answers (a flag like --trace-gc prints on stdout too).
  const next = async (): Promise<string> => {
    for (;;) {
      const line = await lines.next();
      if (line.done === true) throw new Error("the replica server exited");
      if (line.value.startsWith("{")) return line.value;
      console.log(`server: ${line.value}`);
    }
  };
  const { port } = JSON.parse(await next()) as { port: number };
  void (async () => {
    for (;;) console.log(`server: ${await next()}`);
  })().catch(() => {});
  return { child, port };
}

async function main(): Promise<void> {
  const root = mkdtempSync(join(tmpdir(), "strata-bench-wire-"));
  const { child, port } = await startServer(root);
  const volumeId = randomUUID();
  try {
    child.stdin!.write(
      `${JSON.stringify({ op: "create", volumeId, replicaId: "wire", sizeBytes: VOLUME_BYTES, epoch: 1 })}\n`,
    );
    const client = await connectReplica({
      host: "127.0.0.1",
      port,
      secret: SECRET,
      log: pino({ level: "silent" }),
    });
    // Give the create its moment (its answer goes to the line reader above).
    await new Promise((resolve) => setTimeout(resolve, 500));
    console.log(
      `load average before: ${loadavg()
        .map((value) => value.toFixed(2))
        .join(" ")}`,
    );
    for (const job of JOBS) {
      const data = randomBytes(job.size);
      const blocks = VOLUME_BYTES / job.size;
      let done = 0;
      let stopAt = 0;
      const before = sampleCpu([child.pid!]);
      const worker = async () => {
        while (performance.now() < stopAt) {
          const offset = Math.floor(Math.random() * blocks) * job.size;
          if (job.op === "write") await client.write(volumeId, 1, offset, data, { fua: false });
          else returnIoBuffer(await client.read(volumeId, offset, job.size, { epoch: 1 }));
          done++;
        }
      };
      stopAt = performance.now() + SECONDS * 1000;
      await Promise.all(Array.from({ length: job.depth }, worker));
      const after = sampleCpu([child.pid!]);
      const cost = cpuCost(before, after, done, 1);
      const seconds = (after.at - before.at) / 1000;
      console.log(
        `${job.label.padEnd(18)} ${(done / seconds).toFixed(0).padStart(7)} req/s ` +
          `${((done * job.size) / seconds / 1e6).toFixed(0).padStart(5)} MB/s   ` +
          `client ${cost.selfUs.toFixed(1).padStart(7)} µs/req   server ${cost.remoteUs.toFixed(1).padStart(7)} µs/req   ` +
          `machine ${cost.machineCores.toFixed(2)} cores`,
      );
    }
    await client.close();
  } finally {
    child.stdin!.end();
    await once(child, "exit");
    rmSync(root, { recursive: true, force: true });
  }
}

await main();
