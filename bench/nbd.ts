/**
 * The agent's NBD export against nbdkit's file plugin, side by side in one run, with the same fio
 * jobs on the same disk; then snapshot latency on a 1 GiB and a 64 GiB volume.
 *
 *   npm run bench                 # full run (about 2 minutes)
 *   BENCH_RUNTIME=5 npm run bench # shorter
 */
import { type ChildProcess, spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { AgentProcess } from "../test/support/agent-process.js";
import { fio } from "../test/support/fio.js";
import { run } from "../test/support/run.js";

const GiB = 1024 ** 3;
const RUNTIME_SECONDS = Number(process.env.BENCH_RUNTIME ?? 15);
const WORKING_SET = "1g";

interface Job {
  name: string;
  rw: string;
  bs: string;
  iodepth: number;
}

/** The goal of the issue: the agent at ≥ 0.5× nbdkit's file plugin on each of these. */
const JOBS: Job[] = [
  { name: "seq-write 1M qd8", rw: "write", bs: "1m", iodepth: 8 },
  { name: "seq-read 1M qd8", rw: "read", bs: "1m", iodepth: 8 },
  { name: "rand-write 4K qd32", rw: "randwrite", bs: "4k", iodepth: 32 },
  { name: "rand-read 4K qd32", rw: "randread", bs: "4k", iodepth: 32 },
];

async function measure(uri: string, job: Job): Promise<{ mbps: number; iops: number }> {
  const result = await fio(uri, [
    `--rw=${job.rw}`,
    `--bs=${job.bs}`,
    `--iodepth=${job.iodepth}`,
    `--size=${WORKING_SET}`,
    "--time_based",
    `--runtime=${RUNTIME_SECONDS}`,
    "--ramp_time=2",
  ]);
  const side = job.rw.includes("read") ? result.read : result.write;
  return { mbps: side.bw_bytes / 1e6, iops: side.iops };
}

/** Writes the whole working set once so that reads hit allocated blocks on both servers. */
async function fill(uri: string): Promise<void> {
  await fio(uri, ["--rw=write", "--bs=1m", "--iodepth=8", `--size=${WORKING_SET}`]);
}

async function startNbdkit(file: string, port: number): Promise<ChildProcess> {
  await run("truncate", ["-s", WORKING_SET, file]);
  const nbdkit = spawn("nbdkit", ["-f", "-p", String(port), "--exit-with-parent", "file", file], {
    stdio: "ignore",
  });
  for (let i = 0; i < 100; i++) {
    try {
      await run("nbdinfo", ["--size", `nbd://127.0.0.1:${port}`]);
      return nbdkit;
    } catch {
      await sleep(100);
    }
  }
  throw new Error("nbdkit did not start");
}

async function snapshotLatencyMs(agent: AgentProcess, volume: string, samples: number): Promise<number> {
  const times: number[] = [];
  for (let i = 0; i < samples; i++) {
    const started = process.hrtime.bigint();
    const response = await agent.api("POST", `/v1/volumes/${volume}/snapshots`, { name: `bench-${i}` });
    times.push(Number(process.hrtime.bigint() - started) / 1e6);
    if (response.status !== 201) throw new Error(`snapshot failed: ${JSON.stringify(response.body)}`);
  }
  times.sort((a, b) => a - b);
  return times[Math.floor(times.length / 2)]!;
}

const pad = (text: string, width: number) => text.padEnd(width);

async function main(): Promise<void> {
  const root = mkdtempSync(join(tmpdir(), "strata-bench-"));
  const agent = await new AgentProcess(join(root, "agent")).start();
  const nbdkitPort = 10900 + Math.floor(Math.random() * 90);
  const nbdkit = await startNbdkit(join(root, "nbdkit.img"), nbdkitPort);
  try {
    const agentUri = await agent.createAttachedVolume("bench", 1 * GiB);
    const nbdkitUri = `nbd://127.0.0.1:${nbdkitPort}`;
    await fill(agentUri);
    await fill(nbdkitUri);

    console.log(`fio --ioengine=nbd, ${RUNTIME_SECONDS}s per job, ${WORKING_SET} working set, same disk\n`);
    console.log(`${pad("job", 22)}${pad("agent", 24)}${pad("nbdkit file", 24)}agent/nbdkit`);
    for (const job of JOBS) {
      const ours = await measure(agentUri, job);
      const theirs = await measure(nbdkitUri, job);
      const describe = (r: { mbps: number; iops: number }) =>
        `${r.mbps.toFixed(0)} MB/s ${r.iops.toFixed(0)} IOPS`;
      console.log(
        `${pad(job.name, 22)}${pad(describe(ours), 24)}${pad(describe(theirs), 24)}${(ours.iops / theirs.iops).toFixed(2)}×`,
      );
    }

    await agent.createAttachedVolume("snap-1g", 1 * GiB);
    await agent.createAttachedVolume("snap-64g", 64 * GiB);
    for (const volume of ["snap-1g", "snap-64g"]) {
      // Some written data in the head, so the snapshot has something to freeze.
      await fio(agent.nbdUri(volume), [
        "--rw=randwrite",
        "--bs=64k",
        "--size=1g",
        "--io_size=256m",
        "--iodepth=16",
      ]);
    }
    console.log("\nsnapshot create (control API round trip, median of 20)");
    for (const volume of ["snap-1g", "snap-64g"]) {
      console.log(`${pad(volume, 22)}${(await snapshotLatencyMs(agent, volume, 20)).toFixed(2)} ms`);
    }
  } finally {
    nbdkit.kill();
    await agent.destroy();
    rmSync(root, { recursive: true, force: true });
  }
}

await main();
