import { ScheduleKind, type SchedulePolicy, type Schedules } from "../core/schedule-policies.js";
import { formatAge } from "./format.js";
import { formatDetails, formatTable } from "./output.js";

/** One schedule in words, e.g. "every 60 min, keep 24" or "sunday 03:00 UTC, keep 4". */
export function describeSchedule(schedules: Schedules, kind: ScheduleKind): string | undefined {
  const { interval, daily, weekly, monthly } = schedules;
  switch (kind) {
    case "interval":
      return interval && `every ${interval.minutes} min, keep ${interval.retain}`;
    case "daily":
      return daily && `${daily.time} UTC, keep ${daily.retain}`;
    case "weekly":
      return weekly && `${weekly.day} ${weekly.time} UTC, keep ${weekly.retain}`;
    case "monthly":
      return monthly && `day ${monthly.date} ${monthly.time} UTC, keep ${monthly.retain}`;
  }
}

export function policyTable(policies: readonly SchedulePolicy[], now = Date.now()): string {
  return formatTable(
    ["name", ...ScheduleKind.options, "age"],
    policies.map((policy) => [
      policy.name,
      ...ScheduleKind.options.map((kind) => describeSchedule(policy.schedules, kind) ?? "-"),
      formatAge(policy.createdAt, now),
    ]),
  );
}

/** A policy, and the volumes that follow it. */
export function policyDescription(policy: SchedulePolicy, volumes: readonly string[]): string {
  return formatDetails([
    ["Name", policy.name],
    ...ScheduleKind.options.flatMap((kind) => {
      const described = describeSchedule(policy.schedules, kind);
      return described === undefined ? [] : [[kind[0]!.toUpperCase() + kind.slice(1), described] as const];
    }),
    ["Created", policy.createdAt],
    ["Volumes", volumes.length === 0 ? "none" : volumes.join(", ")],
  ]);
}
