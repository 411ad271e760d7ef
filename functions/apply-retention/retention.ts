import type { Cloudsnap } from "../../core/cloudsnaps.js";
import { SCHEDULE_KINDS_COARSEST_FIRST, type Schedules } from "../../core/schedule-policies.js";

/**
 * The cloudsnaps retention deletes: of each schedule the policy has, all but the latest `retain`
 * of the ones that schedule made. Cloudsnaps taken by hand, and those of a schedule the policy no
 * longer has, are never touched: nothing the operator did not ask for is deleted.
 */
export function expiredCloudsnaps(
  schedules: Schedules,
  cloudsnaps: readonly Pick<Cloudsnap, "id" | "schedule">[],
): string[] {
  return SCHEDULE_KINDS_COARSEST_FIRST.flatMap((kind) => {
    const retain = schedules[kind]?.retain;
    if (retain === undefined) return [];
    const made = cloudsnaps.filter((cloudsnap) => cloudsnap.schedule === kind);
    return made.slice(0, Math.max(0, made.length - retain)).map((cloudsnap) => cloudsnap.id);
  });
}
