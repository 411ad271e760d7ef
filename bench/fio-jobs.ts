/**
 * What bench/nbd.ts and bench/replication.ts share, so their tables compare: the fio job table and
 * how each job is run, the nbdkit file plugin they are measured against, and the table's cells.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { setTimeout as sleep } from "node:timers/promises";
import { fio } from "../test/support/fio.js";
import { run } from "../test/support/run.js";

export const RUNTIME_SECONDS = Number(process.env.BENCH_RUNTIME ?? 15);
export const WORKING_SET = "1g";
/** The start of each run's header line. */
export const FIO_SETUP = `fio --ioengine=nbd, ${RUNTIME_SECONDS}s per job, ${WORKING_SET} working set, same disk`;

export interface Job {
  name: string;
  rw: string;
  bs: string;
  iodepth: number;
}

export interface Rate {
  mbps: number;
  iops: number;
}

/** The goal of the issue: the agent at ≥ 0.5× nbdkit's file plugin on each of these. */
export const JOBS: readonly Job[] = [
  { name: "seq-write 1M qd8", rw: "write", bs: "1m", iodepth: 8 },
  { name: "seq-read 1M qd8", rw: "read", bs: "1m", iodepth: 8 },
  { name: "rand-write 4K qd32", rw: "randwrite", bs: "4k", iodepth: 32 },
  { name: "rand-read 4K qd32", rw: "randread", bs: "4k", iodepth: 32 },
];

/** Runs `job` on the working set of `uri` for RUNTIME_SECONDS (after a 2 s ramp). */
export async function measure(uri: string, job: Job): Promise<Rate> {
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

/** Writes the whole working set once so that reads hit allocated blocks everywhere. */
export async function fill(uri: string): Promise<void> {
  await fio(uri, ["--rw=write", "--bs=1m", "--iodepth=8", `--size=${WORKING_SET}`]);
}

/** nbdkit's file plugin over a new WORKING_SET-sized `file`, on a random port, once it answers. */
export async function startNbdkit(file: string): Promise<{ nbdkit: ChildProcess; uri: string }> {
  const port = 10900 + Math.floor(Math.random() * 90);
  const uri = `nbd://127.0.0.1:${port}`;
  await run("truncate", ["-s", WORKING_SET, file]);
  const nbdkit = spawn("nbdkit", ["-f", "-p", String(port), "--exit-with-parent", "file", file], {
    stdio: "ignore",
  });
  for (let i = 0; i < 100; i++) {
    try {
      await run("nbdinfo", ["--size", uri]);
      return { nbdkit, uri };
    } catch {
      await sleep(100);
    }
  }
  nbdkit.kill("SIGKILL");
  throw new Error("nbdkit did not start");
}

export const pad = (text: string, width: number) => text.padEnd(width);
export const describe = (rate: Rate) => `${rate.mbps.toFixed(0)} MB/s ${rate.iops.toFixed(0)} IOPS`;
export const ratio = (ours: Rate, theirs: Rate) => `${(ours.iops / theirs.iops).toFixed(2)}×`;
/** One table line: each cell padded to its column's width (none past the last width). */
export const row = (widths: readonly number[], cells: readonly string[]) =>
  cells.map((cell, i) => pad(cell, widths[i] ?? 0)).join("");
