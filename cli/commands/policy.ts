import { Command } from "commander";
import { NewSchedulePolicy, type ScheduleKind } from "../../core/schedule-policies.js";
import { validateInput } from "../../core/state/table-client.js";
import { parseDuration } from "../../core/units.js";
import { nameArg } from "../args.js";
import { contextOf } from "../context.js";
import { usageError } from "../failures.js";
import { print } from "../output.js";
import { policyDescription, policyTable } from "../policy-views.js";

/** Every option of `policy create`, by its camel-cased name (`--snapshot-daily-retain` → snapshotDailyRetain). */
type CreateOptions = Record<string, string | undefined>;

/** What schedules the options make: cloudsnaps (`--daily`), or local snapshots (`--snapshot-daily`). */
const COPIES = [
  { prefix: "", field: "schedules", what: "cloudsnap" },
  { prefix: "snapshot-", field: "snapshots", what: "snapshot" },
] as const;
type Copies = (typeof COPIES)[number];

/**
 * Each kind's option, its value's form, and how that value becomes the schedule's fields. The
 * interval's retention options are `--retain` and `--max-age` (the first schedule policies had);
 * the others' are named after their schedule, e.g. `--daily-retain`.
 */
const KINDS: readonly {
  kind: ScheduleKind;
  value: string;
  help: string;
  retention: string;
  fields: (value: string, option: string) => Record<string, unknown>;
}[] = [
  {
    kind: "interval",
    value: "<every>",
    help: "every N minutes, e.g. 15m, 1h or 15 (aligned to the hour)",
    retention: "",
    fields: (value, option) => ({ minutes: intervalMinutes(value, option) }),
  },
  {
    kind: "daily",
    value: "<HH:MM>",
    help: "every day at this time",
    retention: "daily-",
    fields: (time) => ({ time }),
  },
  {
    kind: "weekly",
    value: "<day@HH:MM>",
    help: "every week, e.g. sunday@03:00",
    retention: "weekly-",
    fields: (value, option) => dayAndTime(value, option, "a weekday and a time, e.g. sunday@03:00"),
  },
  {
    kind: "monthly",
    value: "<date@HH:MM>",
    help: "every month on day 1-28, e.g. 1@04:00",
    retention: "monthly-",
    fields: (value, option) => {
      const { day, time } = dayAndTime(value, option, "a day 1-28 and a time, e.g. 1@04:00");
      return { date: Number(day), time };
    },
  },
  {
    kind: "cron",
    value: "<expression>",
    help: 'on a 5-field cron expression in UTC, e.g. "0 */6 * * *"',
    retention: "cron-",
    fields: (expression) => ({ expression }),
  },
];

const scheduleOption = (copies: Copies, kind: ScheduleKind) =>
  kind === "interval" ? `--${copies.prefix}interval` : `--${copies.prefix}${kind}`;
const retainOption = (copies: Copies, retention: string) => `--${copies.prefix}${retention}retain`;
const maxAgeOption = (copies: Copies, retention: string) => `--${copies.prefix}${retention}max-age`;

/** `--snapshot-daily-max-age` → snapshotDailyMaxAge, as commander names it. */
const camel = (option: string) =>
  option.slice(2).replace(/-([a-z])/g, (_, letter: string) => letter.toUpperCase());

/** Schedule policies: when volumes get cloudsnaps and local snapshots, and how long each schedule keeps them. */
export function policyCommand(): Command {
  const policy = new Command("policy")
    .alias("policies")
    .description(
      "schedule policies: when volumes get cloudsnaps and snapshots, and how long each schedule keeps them",
    );

  const create = policy
    .command("create")
    .description(
      "create a schedule policy (times in UTC); volumes follow it with `volume policy` or `volume create --policy`",
    )
    .argument("<name>", "policy name");
  for (const copies of COPIES) {
    for (const { kind, value, help, retention } of KINDS) {
      create
        .option(`${scheduleOption(copies, kind)} ${value}`, `a ${copies.what} ${help}`)
        .option(`${retainOption(copies, retention)} <n>`, `how many of its ${copies.what}s to keep`)
        .option(
          `${maxAgeOption(copies, retention)} <age>`,
          `how long to keep its ${copies.what}s, e.g. 30m, 12h, 7d or 2w (the newest stays)`,
        );
    }
  }
  create.action(async (name: string, options: CreateOptions, command: Command) => {
    const context = contextOf(command);
    const request = policyOf(nameArg(name, "policy"), options);
    const created = await (await context.client()).createPolicy(request);
    context.emit(created, (p) => print(`policy "${p.name}" created`));
  });

  policy
    .command("list")
    .alias("ls")
    .description("list the schedule policies")
    .action(async (_options: object, command: Command) => {
      const context = contextOf(command);
      const policies = await (await context.client()).listPolicies();
      context.emit({ policies }, () => print(policies.length === 0 ? "No policies." : policyTable(policies)));
    });

  policy
    .command("show")
    .description("describe a policy's schedules and the volumes that follow it")
    .argument("<name>", "policy name")
    .action(async (name: string, _options: object, command: Command) => {
      const context = contextOf(command);
      const client = await context.client();
      const found = await client.getPolicy(nameArg(name, "policy"));
      const volumes = (await client.listAssignments())
        .filter((assignment) => assignment.policy === found.name)
        .map((assignment) => assignment.volumeName);
      context.emit({ ...found, volumes }, (p) => print(policyDescription(p, p.volumes)));
    });

  policy
    .command("delete")
    .alias("rm")
    .description("delete a policy no volume follows (its cloudsnaps and snapshots stay)")
    .argument("<name>", "policy name")
    .action(async (name: string, _options: object, command: Command) => {
      const context = contextOf(command);
      await (await context.client()).deletePolicy(nameArg(name, "policy"));
      context.emit({ deleted: name }, () => print(`policy "${name}" deleted`));
    });

  return policy;
}

/**
 * The policy the options describe, checked as the store checks it, so an impossible one is a usage
 * error (exit 2) naming the field, e.g. `schedules.daily.time must be a UTC time`, before anything
 * is sent. A retention option without its schedule, or a schedule without retention, is refused too.
 */
export function policyOf(name: string, options: CreateOptions): NewSchedulePolicy {
  const request: Record<string, unknown> = { name };
  for (const copies of COPIES) {
    const schedules: Record<string, unknown> = {};
    for (const { kind, retention, fields } of KINDS) {
      const option = scheduleOption(copies, kind);
      const [retain, maxAge] = [retainOption(copies, retention), maxAgeOption(copies, retention)];
      const value = options[camel(option)];
      const kept = { retain: options[camel(retain)], maxAge: options[camel(maxAge)] };
      if (value === undefined) {
        const stray = kept.retain === undefined ? maxAge : retain;
        if (kept.retain !== undefined || kept.maxAge !== undefined)
          throw usageError(
            `${stray} needs ${option}: it says how long that schedule keeps its ${copies.what}s`,
          );
        continue;
      }
      if (kept.retain === undefined && kept.maxAge === undefined) {
        throw usageError(
          `${option} needs ${retain} N or ${maxAge} AGE (or both): how many of its ${copies.what}s to keep, or for how long`,
        );
      }
      schedules[kind] = {
        ...fields(value, option),
        ...(kept.retain === undefined ? {} : { retain: Number(kept.retain) }),
        ...(kept.maxAge === undefined ? {} : { maxAge: kept.maxAge }),
      };
    }
    if (Object.keys(schedules).length > 0) request[copies.field] = schedules;
  }
  try {
    return validateInput(NewSchedulePolicy, request, "schedule policy");
  } catch (error) {
    throw usageError((error as Error).message);
  }
}

/** "15m", "2h", "1d" or a bare number of minutes, as whole minutes. */
function intervalMinutes(value: string, option: string): number {
  if (/^\d+$/.test(value)) return Number(value);
  const ms = /^\d+[mhdw]$/.test(value) ? parseDuration(value) : undefined;
  if (ms === undefined) {
    throw usageError(
      `invalid ${option} "${value}": use a duration like 15m, 2h or 1d, or a number of minutes`,
    );
  }
  return ms / 60_000;
}

function dayAndTime(value: string, option: string, example: string): { day: string; time: string } {
  const [day, time, extra] = value.split("@");
  if (day === undefined || time === undefined || extra !== undefined)
    throw usageError(`invalid ${option} "${value}": expected ${example}`);
  return { day, time };
}
