import {
  cronSchedule,
  SCHEDULE_KINDS_COARSEST_FIRST,
  type ScheduleKind,
  type Schedules,
  Weekday,
} from "../../core/schedule-policies.js";

const MINUTE_MS = 60_000;

/**
 * The start of the schedule's latest slot at or before `now`: the moment its latest copy was due;
 * undefined when the policy has no such schedule. Interval slots are aligned to the Unix epoch
 * (a 60-minute schedule fires on the hour UTC), a cron schedule's are its fire times, so every run
 * of the workflow within one slot computes the same slot, whichever minute it runs in.
 */
export function latestSlot(schedules: Schedules, kind: ScheduleKind, now: Date): Date | undefined {
  const { interval, daily, weekly, monthly, cron } = schedules;
  switch (kind) {
    case "cron":
      // previousRuns counts only fire times before its reference: 1 ms on makes `now` itself one.
      return cron && cronSchedule(cron.expression).previousRuns(1, new Date(now.getTime() + 1))[0];
    case "interval":
      return (
        interval &&
        new Date(Math.floor(now.getTime() / (interval.minutes * MINUTE_MS)) * interval.minutes * MINUTE_MS)
      );
    case "daily":
      return daily && latestAtOrBefore(now, (back) => timeOnDay(now, -back, daily.time));
    case "weekly":
      return (
        weekly &&
        latestAtOrBefore(now, (back) => {
          const daysSince = (now.getUTCDay() - Weekday.options.indexOf(weekly.day) + 7) % 7;
          return timeOnDay(now, -(daysSince + 7 * back), weekly.time);
        })
      );
    case "monthly":
      return (
        monthly &&
        latestAtOrBefore(
          now,
          // Date.UTC carries month -1 into December of the year before.
          (back) =>
            Date.UTC(
              now.getUTCFullYear(),
              now.getUTCMonth() - back,
              monthly.date,
              ...hoursAndMinutes(monthly.time),
            ),
        )
      );
  }
}

/** The candidate of this period (back = 0) if it is not in the future, else the one before. */
function latestAtOrBefore(now: Date, candidate: (back: number) => number): Date {
  const current = candidate(0);
  return new Date(current <= now.getTime() ? current : candidate(1));
}

/** `time` ("HH:MM" UTC) on the day `days` from `now`'s. */
function timeOnDay(now: Date, days: number, time: string): number {
  return Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), now.getUTCDate() + days, ...hoursAndMinutes(time));
}

function hoursAndMinutes(time: string): [number, number] {
  const [hours, minutes] = time.split(":").map(Number);
  return [hours ?? 0, minutes ?? 0];
}

export interface DueSchedule {
  schedule: ScheduleKind;
  /** The slot the copy is for: its request token, so every run in the slot finds one operation. */
  slot: Date;
}

/** A cloudsnap or a snapshot, as schedules and retention see it: when, and which schedule made it. */
export interface ScheduledCopy {
  createdAt: string;
  /** Absent for one taken by hand. */
  schedule?: ScheduleKind | undefined;
}

/**
 * The schedule a volume's next copy (cloudsnap or snapshot, `copies` oldest first) is for, or
 * undefined when none is due: a schedule is due when the volume has no copy of it taken since its
 * latest slot began, so slots missed while the cluster was down give one copy, not one per slot.
 * When several are due at once, the coarsest goes first (its copy is kept longest); the others are
 * found due again by the next run, a minute later, rather than copying one volume twice at once.
 */
export function dueSchedule(
  schedules: Schedules,
  copies: readonly ScheduledCopy[],
  now: Date,
): DueSchedule | undefined {
  for (const kind of SCHEDULE_KINDS_COARSEST_FIRST) {
    const slot = latestSlot(schedules, kind, now);
    if (slot === undefined) continue;
    const latest = copies.findLast((copy) => copy.schedule === kind);
    if (latest === undefined || Date.parse(latest.createdAt) < slot.getTime())
      return { schedule: kind, slot };
  }
  return undefined;
}
