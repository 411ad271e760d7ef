import { maxAgeMs, SCHEDULE_KINDS_COARSEST_FIRST, type Schedules } from "../../core/schedule-policies.js";
import type { ScheduledCopy } from "../find-due-cloudsnaps/schedule.js";

/**
 * The copies (cloudsnaps or snapshots, `copies` oldest first) retention deletes: of each schedule
 * the policy has, those of the ones it made that are beyond its last `retain`, or older than its
 * `maxAge` at `now`, but never the newest it made: that one is the next incremental's base and the
 * only recent copy, however long the schedule has been failing. Copies taken by hand, and those of
 * a schedule the policy no longer has, are never touched: nothing the operator did not ask for is
 * deleted.
 */
export function expiredCopies<Copy extends ScheduledCopy & { id: string }>(
  schedules: Schedules,
  copies: readonly Copy[],
  now: Date,
): string[] {
  return SCHEDULE_KINDS_COARSEST_FIRST.flatMap((kind) => {
    const schedule = schedules[kind];
    if (schedule === undefined) return [];
    const made = copies.filter((copy) => copy.schedule === kind);
    const beyondCount = schedule.retain === undefined ? 0 : made.length - schedule.retain;
    const oldest =
      schedule.maxAge === undefined ? Number.NEGATIVE_INFINITY : now.getTime() - maxAgeMs(schedule.maxAge);
    return made
      .slice(0, -1)
      .filter((copy, index) => index < beyondCount || Date.parse(copy.createdAt) < oldest)
      .map((copy) => copy.id);
  });
}
