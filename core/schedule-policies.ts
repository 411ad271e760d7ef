import { Cron } from "croner";
import { z } from "zod";
import { ResourceName } from "./model.js";
import { parseDuration } from "./units.js";

/**
 * Schedule policies, like Portworx's SchedulePolicy: a named set of schedules (every N minutes,
 * daily, weekly, monthly, or a cron expression; times in UTC) for cloudsnaps (`schedules`, uploaded
 * to the bucket) and for local snapshots (`snapshots`, instant, kept on the volume's replicas). Each
 * schedule keeps the last `retain` copies it made and/or those younger than `maxAge`. A volume
 * assigned a policy gets them from the cloudsnap workflow; copies taken by hand belong to no
 * schedule and no retention ever deletes them.
 */

export const ScheduleKind = z.enum(["interval", "daily", "weekly", "monthly", "cron"]);
export type ScheduleKind = z.infer<typeof ScheduleKind>;

/**
 * From the coarsest: when several schedules of a volume are due at once, the coarsest is taken
 * first. A cron expression may be anything; it is ranked above the interval, which policies use for
 * their finest schedule.
 */
export const SCHEDULE_KINDS_COARSEST_FIRST: readonly ScheduleKind[] = [
  "monthly",
  "weekly",
  "daily",
  "cron",
  "interval",
];

export const Weekday = z.enum(
  ["sunday", "monday", "tuesday", "wednesday", "thursday", "friday", "saturday"],
  {
    error: "must be a weekday in English, e.g. sunday",
  },
);
export type Weekday = z.infer<typeof Weekday>;

/** A whole number from `min` to `max`: `what` says what it counts, the bounds what is out of range. */
const wholeNumber = (what: string, min: number, max: number, tooSmall: string, tooLarge: string) =>
  z
    .number({ error: `must be ${what}, ${min} to ${max}` })
    .int(`must be ${what}, ${min} to ${max}`)
    .min(min, tooSmall)
    .max(max, tooLarge);

/** At least one, or the schedule would delete every copy it makes (and the next incremental's base). */
const Retain = wholeNumber(
  "a whole number of copies to keep",
  1,
  1000,
  "must keep at least 1 copy",
  "must keep at most 1000 copies",
);

const MINUTE_MS = 60_000;
const MAX_AGE_EXAMPLES = "a duration like 30m, 12h, 7d or 2w";
const MAX_AGE_MS = 3650 * 86_400_000;

/** How long a schedule keeps its copies, e.g. "7d": from 1 minute to 10 years. */
const MaxAge = z.string({ error: `must be ${MAX_AGE_EXAMPLES}` }).superRefine((text, context) => {
  const ms = /^\d+[mhdw]$/.test(text) ? parseDuration(text) : undefined;
  const problem =
    ms === undefined
      ? `must be ${MAX_AGE_EXAMPLES} (a whole number and m, h, d or w), not "${text}"`
      : ms < MINUTE_MS
        ? "must be at least 1m"
        : ms > MAX_AGE_MS
          ? "must be at most 3650d (10 years)"
          : undefined;
  if (problem !== undefined) context.addIssue({ code: "custom", message: problem });
});

/** The age in milliseconds beyond which a schedule's copies go (a MaxAge the schema accepted). */
export const maxAgeMs = (maxAge: string): number => parseDuration(maxAge)!;

/** What every schedule keeps: its last `retain` copies, and/or those younger than `maxAge`. */
const retention = { retain: Retain.optional(), maxAge: MaxAge.optional() };
type Retention = { retain?: number | undefined; maxAge?: string | undefined };

/** A schedule must say how long its copies stay, or it would keep them for ever. */
const keeping = <Schedule extends Retention>(schedule: z.ZodType<Schedule>) =>
  schedule.refine((fields) => fields.retain !== undefined || fields.maxAge !== undefined, {
    error: "needs retain (how many copies to keep), maxAge (how long to keep them), or both",
  });

const CRON_FIELDS = [
  ["minute", "0-59"],
  ["hour", "0-23"],
  ["day-of-month", "1-31"],
  ["month", "1-12 or jan-dec"],
  ["day-of-week", "0-7 or sun-sat"],
] as const;
const CRON_FORMAT = '5 fields "minute hour day-of-month month day-of-week" in UTC, e.g. "0 */6 * * *"';

/** The expression's schedule in UTC, one minute at the finest (5 fields: no seconds). */
export function cronSchedule(expression: string): Cron {
  return new Cron(expression, { mode: "5-part", timezone: "UTC" });
}

/**
 * Why a cron expression cannot be a schedule, in words naming the field, or undefined when it can.
 * Each field is tried alone (the others `*`), since the parser's own message for one field of five
 * can name another unit (day-of-month "0" reads as "day: -1").
 */
export function cronProblem(expression: string): string | undefined {
  const fields = expression.trim().split(/\s+/);
  if (fields.length === 6 || fields.length === 7) {
    return `has ${fields.length} fields: a seconds field would fire more often than once a minute, and the workflow runs every minute; use ${CRON_FORMAT}`;
  }
  if (fields.length !== 5 && !expression.trim().startsWith("@")) {
    return `must have ${CRON_FORMAT}; "${expression}" has ${fields.length}`;
  }
  for (const [index, [name, range]] of CRON_FIELDS.entries()) {
    if (fields.length !== 5) break;
    const alone = CRON_FIELDS.map((_, other) => (other === index ? fields[index] : "*")).join(" ");
    if (parsesAsCron(alone)) continue;
    return `field ${index + 1} (${name}) "${fields[index]}" is not valid: it takes ${range}, *, lists (1,5), ranges (1-5) and steps (*/5)`;
  }
  if (!parsesAsCron(expression)) return `must have ${CRON_FORMAT}; "${expression}" is not one`;
  if (cronSchedule(expression).nextRun() === null) return "never fires: no date matches it";
  return undefined;
}

function parsesAsCron(expression: string): boolean {
  try {
    cronSchedule(expression);
    return true;
  } catch {
    return false;
  }
}

const CronExpression = z
  .string({ error: `must be a cron expression of ${CRON_FORMAT}` })
  .superRefine((expression, context) => {
    const problem = cronProblem(expression);
    if (problem !== undefined) context.addIssue({ code: "custom", message: problem });
  });

const TimeOfDay = z
  .string({ error: 'must be a UTC time "HH:MM"' })
  .regex(/^([01]\d|2[0-3]):[0-5]\d$/, 'must be a UTC time "HH:MM" from 00:00 to 23:59');

/** One minute is the finest a scheduled workflow every minute can keep; a year the coarsest that means "interval". */
const Minutes = wholeNumber(
  "a whole number of minutes",
  1,
  525_600,
  "must be at least 1 minute",
  "must be at most 525600 minutes (a year)",
);

/** 1-28: every month has them, so a monthly schedule never skips a month. */
const DayOfMonth = wholeNumber(
  "a day of the month",
  1,
  28,
  "must be a day of the month, 1 to 28",
  "must be a day of the month, 1 to 28 (every month has those)",
);

/** At most one schedule of each kind. */
export const Schedules = z.strictObject({
  interval: keeping(z.strictObject({ minutes: Minutes, ...retention })).optional(),
  daily: keeping(z.strictObject({ time: TimeOfDay, ...retention })).optional(),
  weekly: keeping(z.strictObject({ day: Weekday, time: TimeOfDay, ...retention })).optional(),
  monthly: keeping(z.strictObject({ date: DayOfMonth, time: TimeOfDay, ...retention })).optional(),
  cron: keeping(z.strictObject({ expression: CronExpression, ...retention })).optional(),
});
export type Schedules = z.infer<typeof Schedules>;
export type Schedule = NonNullable<Schedules[ScheduleKind]>;

const hasSchedule = (schedules: Schedules | undefined) =>
  schedules !== undefined && ScheduleKind.options.some((kind) => schedules[kind] !== undefined);

/**
 * `schedules` make cloudsnaps, `snapshots` local snapshots; a policy needs one of either. Policies
 * stored before snapshot schedules existed have `schedules` only, and read as they were.
 */
export const NewSchedulePolicy = z
  .strictObject({ name: ResourceName, schedules: Schedules.optional(), snapshots: Schedules.optional() })
  .refine((policy) => hasSchedule(policy.schedules) || hasSchedule(policy.snapshots), {
    error:
      "a policy needs at least one schedule: interval, daily, weekly, monthly or cron, under schedules (cloudsnaps) or snapshots",
  });
export type NewSchedulePolicy = z.infer<typeof NewSchedulePolicy>;

/** Not strict: a stored item carries its table keys too. */
export const SchedulePolicy = z.object({
  name: ResourceName,
  schedules: Schedules.optional(),
  snapshots: Schedules.optional(),
  createdAt: z.iso.datetime(),
});
export type SchedulePolicy = z.infer<typeof SchedulePolicy>;

/** Which policy a volume follows, and the consistency group its scheduled cloudsnaps are recorded in. */
export const PolicyAssignment = z.object({
  volumeId: z.string().min(1),
  /** The volume's name when assigned, for people reading the list; the id is what counts. */
  volumeName: ResourceName,
  policy: ResourceName,
  group: ResourceName.optional(),
  assignedAt: z.iso.datetime(),
});
export type PolicyAssignment = z.infer<typeof PolicyAssignment>;

/** What the API takes to assign a policy to a volume. */
export const AssignPolicyRequest = z.strictObject({ policy: ResourceName, group: ResourceName.optional() });
export type AssignPolicyRequest = z.infer<typeof AssignPolicyRequest>;

/** Policies and their assignments, as the agent's API serves them to the CLI. */
export interface PolicyService {
  listPolicies(): Promise<SchedulePolicy[]>;
  getPolicy(name: string): Promise<SchedulePolicy>;
  createPolicy(policy: NewSchedulePolicy): Promise<SchedulePolicy>;
  /** Refused while a volume follows it. */
  deletePolicy(name: string): Promise<void>;
  listAssignments(): Promise<PolicyAssignment[]>;
  /** Replaces the volume's policy if it had one. */
  assignPolicy(volume: string, request: AssignPolicyRequest): Promise<PolicyAssignment>;
  /** Idempotent: a volume without a policy stays without one. */
  unassignPolicy(volume: string): Promise<void>;
}

const SCHEDULED_SNAPSHOT = /^(interval|daily|weekly|monthly|cron)-\d{8}T\d{4}Z$/;

/**
 * The name of the snapshot a policy's snapshot schedule takes for a slot, `<schedule>-<UTC minute
 * of the slot>`, e.g. `daily-20261203T0200Z`: predictable, sorted by time, and the same for every
 * attempt at one slot (a retried operation finds the snapshot its first attempt took).
 */
export function scheduledSnapshotName(schedule: ScheduleKind, slot: Date): string {
  return `${schedule}-${slot.toISOString().slice(0, 16).replace(/[-:]/g, "")}Z`;
}

/** The schedule a snapshot's name says took it, or undefined for one taken by hand. */
export function scheduleOfSnapshot(name: string): ScheduleKind | undefined {
  return SCHEDULED_SNAPSHOT.test(name) ? ScheduleKind.parse(name.slice(0, name.indexOf("-"))) : undefined;
}
