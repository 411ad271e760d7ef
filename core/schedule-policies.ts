import { z } from "zod";
import { invalid } from "./errors.js";
import { ResourceName } from "./model.js";

/**
 * Cloudsnap schedule policies, like Portworx's SchedulePolicy: a named set of schedules (every N
 * minutes, daily, weekly, monthly; times in UTC), each keeping the last `retain` cloudsnaps it made.
 * A volume assigned a policy gets cloudsnaps from the cloudsnap workflow; cloudsnaps taken by hand
 * belong to no schedule and no retention ever deletes them.
 */

export const ScheduleKind = z.enum(["interval", "daily", "weekly", "monthly"]);
export type ScheduleKind = z.infer<typeof ScheduleKind>;

/** From the coarsest: when several schedules of a volume are due at once, the coarsest is taken first. */
export const SCHEDULE_KINDS_COARSEST_FIRST: readonly ScheduleKind[] = [
  "monthly",
  "weekly",
  "daily",
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

/** At least one, or the schedule would delete every cloudsnap it makes (and the next incremental's base). */
const Retain = wholeNumber(
  "a whole number of cloudsnaps to keep",
  1,
  1000,
  "must keep at least 1 cloudsnap",
  "must keep at most 1000 cloudsnaps",
);

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

export const Schedules = z
  .strictObject({
    interval: z.strictObject({ minutes: Minutes, retain: Retain }).optional(),
    daily: z.strictObject({ time: TimeOfDay, retain: Retain }).optional(),
    weekly: z.strictObject({ day: Weekday, time: TimeOfDay, retain: Retain }).optional(),
    monthly: z.strictObject({ date: DayOfMonth, time: TimeOfDay, retain: Retain }).optional(),
  })
  .refine((schedules) => ScheduleKind.options.some((kind) => schedules[kind] !== undefined), {
    error: "a policy needs at least one schedule: interval, daily, weekly or monthly",
  });
export type Schedules = z.infer<typeof Schedules>;

export const NewSchedulePolicy = z.strictObject({ name: ResourceName, schedules: Schedules });
export type NewSchedulePolicy = z.infer<typeof NewSchedulePolicy>;

/** Not strict: a stored item carries its table keys too. */
export const SchedulePolicy = z.object({ ...NewSchedulePolicy.shape, createdAt: z.iso.datetime() });
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

/**
 * The value as `schema` reads it, or an INVALID_ARGUMENT error of one sentence naming each field that
 * is wrong and why, e.g. `invalid schedule policy: schedules.interval.minutes must be at least 1 minute`.
 */
export function validated<T>(schema: z.ZodType<T>, value: unknown, what: string): T {
  const result = schema.safeParse(value);
  if (result.success) return result.data;
  const problems = result.error.issues.map((issue) => {
    const field = issue.path.map(String).join(".");
    return field === "" ? issue.message : `${field} ${issue.message}`;
  });
  throw invalid(`invalid ${what}: ${problems.join("; ")}`);
}

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
