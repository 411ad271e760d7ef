import {
  type Schedule,
  ScheduleKind,
  type SchedulePolicy,
  type Schedules,
} from "../core/schedule-policies.js";
import { formatAge } from "./format.js";
import { formatDetails, formatTable } from "./output.js";

/** When a schedule fires, e.g. "every 60 min", "sunday 03:00 UTC", "cron 0 *\/6 * * * (UTC)". */
export function describeWhen(schedules: Schedules, kind: ScheduleKind): string | undefined {
  const { interval, daily, weekly, monthly, cron } = schedules;
  switch (kind) {
    case "interval":
      return interval && `every ${interval.minutes} min`;
    case "daily":
      return daily && `${daily.time} UTC`;
    case "weekly":
      return weekly && `${weekly.day} ${weekly.time} UTC`;
    case "monthly":
      return monthly && `day ${monthly.date} ${monthly.time} UTC`;
    case "cron":
      return cron && `cron ${cron.expression} (UTC)`;
  }
}

/** What a schedule keeps, e.g. "last 24", "7d", "last 24 within 7d" (the newest always stays). */
export function describeRetention(schedule: Schedule): string {
  const { retain, maxAge } = schedule;
  if (retain === undefined) return `within ${maxAge}`;
  return maxAge === undefined ? `last ${retain}` : `last ${retain} within ${maxAge}`;
}

/** The kinds a policy's schedules have, e.g. "interval, daily"; "-" for none. */
const kindsOf = (schedules: Schedules | undefined) =>
  ScheduleKind.options.filter((kind) => schedules?.[kind] !== undefined).join(", ") || "-";

export function policyTable(policies: readonly SchedulePolicy[], now = Date.now()): string {
  return formatTable(
    ["name", "cloudsnaps", "snapshots", "age"],
    policies.map((policy) => [
      policy.name,
      kindsOf(policy.schedules),
      kindsOf(policy.snapshots),
      formatAge(policy.createdAt, now),
    ]),
  );
}

/** A policy, every schedule with what it makes, when and what it keeps, and the volumes that follow it. */
export function policyDescription(policy: SchedulePolicy, volumes: readonly string[]): string {
  const rows = (
    [
      ["cloudsnap", policy.schedules],
      ["snapshot", policy.snapshots],
    ] as const
  ).flatMap(([copy, schedules]) =>
    ScheduleKind.options.flatMap((kind) => {
      const schedule = schedules?.[kind];
      if (schedules === undefined || schedule === undefined) return [];
      return [[copy, kind, describeWhen(schedules, kind)!, describeRetention(schedule)]];
    }),
  );
  return [
    formatDetails([
      ["Name", policy.name],
      ["Created", policy.createdAt],
      ["Volumes", volumes.length === 0 ? "none" : volumes.join(", ")],
    ]),
    "",
    formatTable(["copy", "schedule", "when", "keeps"], rows),
  ].join("\n");
}
