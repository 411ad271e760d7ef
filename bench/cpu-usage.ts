/**
 * CPU time per process over one fio job, read from /proc: on a shared 2-core machine the rate of
 * a job moves by ±30% with the load, but the CPU each request costs our own processes barely
 * moves, so it says whether a change made the data path cheaper.
 */
import { readFileSync } from "node:fs";

/** Kernel clock ticks per second (USER_HZ), 100 on every Linux this runs on. */
const TICKS_PER_SECOND = 100;

/** CPU seconds (user + system) the process `pid` has used so far. */
function processSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  // The command name (field 2) may hold spaces; the fields after its closing parenthesis do not.
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  // utime and stime are fields 14 and 15 of the line, 12 and 13 after the name.
  return (Number(fields[11]) + Number(fields[12])) / TICKS_PER_SECOND;
}

/** CPU seconds every core of the machine has been busy (anything but idle and iowait) so far. */
function machineBusySeconds(): number {
  const line = readFileSync("/proc/stat", "utf8").split("\n", 1)[0]!;
  const ticks = line.trim().split(/\s+/).slice(1).map(Number);
  const idle = (ticks[3] ?? 0) + (ticks[4] ?? 0);
  return (ticks.reduce((sum, value) => sum + value, 0) - idle) / TICKS_PER_SECOND;
}

export interface CpuSample {
  at: number;
  /** This process (coordinator, local replica, NBD server). */
  self: number;
  /** Each replica server process, in the order given. */
  remotes: number[];
  machine: number;
}

export function sampleCpu(remotePids: readonly number[]): CpuSample {
  const usage = process.cpuUsage();
  return {
    at: performance.now(),
    self: (usage.user + usage.system) / 1e6,
    remotes: remotePids.map(processSeconds),
    machine: machineBusySeconds(),
  };
}

export interface CpuCost {
  /** µs of CPU per request in this process. */
  selfUs: number;
  /** µs of CPU per request in the replica servers that served the volume, summed. */
  remoteUs: number;
  /** Cores busy on the whole machine over the interval (fio and other work included). */
  machineCores: number;
}

/** The cost of `requests` requests between two samples, counting the first `remotes` replica servers. */
export function cpuCost(before: CpuSample, after: CpuSample, requests: number, remotes: number): CpuCost {
  let remote = 0;
  for (let i = 0; i < remotes; i++) remote += after.remotes[i]! - before.remotes[i]!;
  const per = requests > 0 ? 1e6 / requests : 0;
  return {
    selfUs: (after.self - before.self) * per,
    remoteUs: remote * per,
    machineCores: (after.machine - before.machine) / ((after.at - before.at) / 1000),
  };
}

export const describeCost = (cost: CpuCost, remotes: number) =>
  remotes === 0
    ? `${cost.selfUs.toFixed(0)} µs, ${cost.machineCores.toFixed(2)} cores`
    : `${cost.selfUs.toFixed(0)}+${cost.remoteUs.toFixed(0)} µs, ${cost.machineCores.toFixed(2)} cores`;
