import { setTimeout as sleep } from "node:timers/promises";

/** EventBridge Scheduler's finest rate: the sweep is started once a minute in AWS. */
export const SCHEDULE_PERIOD_MS = 60_000;

/**
 * A node lost without an EC2 event (its agent crashed, its network was cut) is seen only by the
 * sweep, so one scheduled invocation sweeps `sweeps` times, evenly over the schedule's period:
 * twelve sweeps put a lost heartbeat within 5 s of the verdict instead of a minute. It stops early
 * when the invocation's remaining time would not cover the next sweep. Returns each sweep's result.
 */
export async function sweepOverThePeriod<R>(
  sweep: () => Promise<R>,
  options: { sweeps: number; remainingMs: () => number; periodMs?: number },
): Promise<R[]> {
  const intervalMs = (options.periodMs ?? SCHEDULE_PERIOD_MS) / options.sweeps;
  const started = Date.now();
  const results: R[] = [];
  for (let index = 0; index < options.sweeps; index++) {
    const due = started + index * intervalMs;
    if (index > 0 && options.remainingMs() < due - Date.now() + intervalMs) break;
    await sleep(Math.max(0, due - Date.now()));
    results.push(await sweep());
  }
  return results;
}
