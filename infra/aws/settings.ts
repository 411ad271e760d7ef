import { z } from "zod";
import { strataSchedules } from "../schedules.js";
import { DEFAULT_PREFIX } from "../workflows.js";

/**
 * What one deployment of the control plane is for, from the CDK context: cdk.json holds the
 * defaults (so a bare `npx cdk synth` works), `-c name=value` overrides them. A value given on the
 * command line is a string; lists and the schedule overrides may be written as JSON there
 * (`-c nodeGroups='["a","b"]'`) and lists also comma-separated (`-c nodeGroups=a,b`).
 */
export interface DeploymentSettings {
  /** The EKS cluster the agents run on: drives are tagged with it, node groups belong to it. */
  clusterName: string;
  /** The managed node groups whose instances run agents and may take over a lost node's drives. */
  nodeGroups: string[];
  /** Availability zones the drives may be attached in; empty: any zone of the region. */
  zones: string[];
  /** Prefix of every named resource (functions, state machines, table, bus, schedules). */
  prefix: string;
  /** The cloudsnap bucket's name; absent: CloudFormation names it. */
  bucketName?: string;
  /** Schedule expressions replacing infra/schedules.ts's, by schedule name. */
  schedules: Record<string, string>;
  /** Who gets the alarms by email; absent: the alarm topic has no subscription. */
  alarmEmail?: string;
  /** The Lambdas' Powertools log level. */
  logLevel: "DEBUG" | "INFO" | "WARN" | "ERROR";
  /**
   * How many times the health sweep sweeps within each minute's invocation
   * (functions/health-sweep/minute.ts): 12 sees a lost heartbeat within 5 s of its timeout, and
   * keeps the function running all minute; 1 sweeps once and returns, seeing it within a minute.
   */
  sweepsPerMinute: number;
}

/** The context keys read, each under its own name. */
export const CONTEXT_KEYS = [
  "clusterName",
  "nodeGroups",
  "zones",
  "prefix",
  "bucketName",
  "schedules",
  "alarmEmail",
  "logLevel",
  "sweepsPerMinute",
] as const;

/** EKS: 1-100 characters, a letter or digit first, then letters, digits, hyphens and underscores. */
const EKS_NAME = /^[0-9A-Za-z][A-Za-z0-9\-_]{0,99}$/;
/** EKS node group names follow the same rule (at most 63 characters). */
const NODE_GROUP_NAME = /^[0-9A-Za-z][A-Za-z0-9\-_]{0,62}$/;
/**
 * The longest function name is `<prefix>-release-replacement` and Lambda allows 64 characters;
 * the table, bus and state machine names are shorter than that limit with the same prefix.
 */
const PREFIX = /^[a-z][a-z0-9-]{0,39}$/;
const ZONE = /^[a-z]{2}(-[a-z]+)+-\d[a-z]$/;
const BUCKET = /^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/;
/** Scheduler's three forms; the service checks the fields of a cron expression itself. */
const SCHEDULE_EXPRESSION = /^(rate\(\d+ (minute|minutes|hour|hours|day|days)\)|cron\(.+\)|at\(.+\))$/;

/** A context value that is a list: an array, a JSON array, or a comma-separated string. */
const ListValue = z.preprocess((value) => {
  if (typeof value !== "string") return value;
  const text = value.trim();
  if (text.startsWith("[")) {
    try {
      return JSON.parse(text);
    } catch {
      return value;
    }
  }
  return text === "" ? [] : text.split(",").map((item) => item.trim());
}, z.array(z.string()));

/** A context value that is an object: as is, or written as JSON on the command line. */
const ObjectValue = z.preprocess(
  (value) => {
    if (typeof value !== "string") return value;
    try {
      return JSON.parse(value);
    } catch {
      return value;
    }
  },
  z.record(z.string(), z.string()),
);

const scheduleNames = new Set(strataSchedules.map((schedule) => schedule.name));

const Context = z.object({
  clusterName: z.string().regex(EKS_NAME, "an EKS cluster name (letters, digits, - and _; at most 100)"),
  nodeGroups: ListValue.pipe(
    z
      .array(z.string().regex(NODE_GROUP_NAME, "a node group name (letters, digits, - and _; at most 63)"))
      .min(1, "at least one node group"),
  ),
  zones: ListValue.pipe(z.array(z.string().regex(ZONE, "an availability zone name such as eu-west-1a"))),
  prefix: z.string().regex(PREFIX, "lower-case letters, digits and hyphens, a letter first, at most 40"),
  bucketName: z
    .string()
    .regex(BUCKET, "an S3 bucket name (3-63 lower-case letters, digits, dots and hyphens)")
    .refine((name) => !name.includes(".."), "an S3 bucket name without two dots in a row")
    .optional(),
  schedules: ObjectValue.pipe(
    z
      .record(z.string(), z.string().regex(SCHEDULE_EXPRESSION, "rate(N minutes), cron(...) or at(...)"))
      .superRefine((schedules, context) => {
        for (const name of Object.keys(schedules))
          if (!scheduleNames.has(name))
            context.addIssue({
              code: "custom",
              path: [name],
              message: `a schedule of infra/schedules.ts (${[...scheduleNames].join(", ")})`,
            });
      }),
  ),
  alarmEmail: z.email("an email address").optional(),
  logLevel: z.enum(["DEBUG", "INFO", "WARN", "ERROR"]),
  // The function's own limits (functions/shared/settings.ts); a number given as -c text is read as one.
  sweepsPerMinute: z.coerce.number().int("a whole number of sweeps from 1 to 60").min(1).max(60),
});

const OPTIONAL_KEYS = new Set<string>(["bucketName", "alarmEmail"]);

const DEFAULTS = {
  prefix: DEFAULT_PREFIX,
  zones: [],
  schedules: {},
  logLevel: "INFO",
  sweepsPerMinute: 12,
} as const;

/**
 * The settings from `context(key)` (a construct's `node.tryGetContext`), defaults filled in. A
 * missing or malformed value fails synthesis with the key and what it should be.
 */
export function deploymentSettings(context: (key: string) => unknown): DeploymentSettings {
  const given: Record<string, unknown> = { ...DEFAULTS };
  for (const key of CONTEXT_KEYS) {
    const value = context(key);
    // An empty `-c bucketName=` means "not given", as leaving the key out does.
    if (value === undefined || (value === "" && OPTIONAL_KEYS.has(key))) continue;
    given[key] = value;
  }
  const parsed = Context.safeParse(given);
  if (!parsed.success) {
    const problems = parsed.error.issues.map((issue) => {
      const key = issue.path.map(String).join(".");
      return `${key}: ${issue.message} (got ${JSON.stringify(given[String(issue.path[0])])})`;
    });
    throw new Error(`the CDK context is invalid: ${problems.join("; ")}`);
  }
  const { bucketName, alarmEmail, ...rest } = parsed.data;
  return {
    ...rest,
    ...(bucketName === undefined ? {} : { bucketName }),
    ...(alarmEmail === undefined ? {} : { alarmEmail }),
  };
}
