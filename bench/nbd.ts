/**
 * The agent's NBD export against nbdkit's file plugin, side by side in one run, with the same fio
 * jobs on the same disk; then snapshot latency on a 1 GiB and a 64 GiB volume.
 *
 *   npm run bench                 # full run (about 2 minutes)
 *   BENCH_RUNTIME=5 npm run bench # shorter
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { AgentProcess } from "../test/support/agent-process.js";
import { fio } from "../test/support/fio.js";
import { describe, FIO_SETUP, fill, JOBS, measure, pad, ratio, row, startNbdkit } from "./fio-jobs.js";

const GiB = 1024 ** 3;

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

async function main(): Promise<void> {
  const root = mkdtempSync(join(tmpdir(), "strata-bench-"));
  const agent = await new AgentProcess(join(root, "agent")).start();
  const { nbdkit, uri: nbdkitUri } = await startNbdkit(join(root, "nbdkit.img"));
  try {
    const agentUri = await agent.createAttachedVolume("bench", 1 * GiB);
    await fill(agentUri);
    await fill(nbdkitUri);

    console.log(`${FIO_SETUP}\n`);
    const widths = [22, 24, 24];
    console.log(row(widths, ["job", "agent", "nbdkit file", "agent/nbdkit"]));
    for (const job of JOBS) {
      const ours = await measure(agentUri, job);
      const theirs = await measure(nbdkitUri, job);
      console.log(row(widths, [job.name, describe(ours), describe(theirs), ratio(ours, theirs)]));
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
