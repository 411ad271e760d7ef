import { Command } from "commander";
import { Schedules, validated } from "../../core/schedule-policies.js";
import { nameArg } from "../args.js";
import { contextOf } from "../context.js";
import { usageError } from "../failures.js";
import { print } from "../output.js";
import { policyDescription, policyTable } from "../policy-views.js";

interface CreateOptions {
  interval?: string;
  retain?: string;
  daily?: string;
  dailyRetain?: string;
  weekly?: string;
  weeklyRetain?: string;
  monthly?: string;
  monthlyRetain?: string;
}

/** Cloudsnap schedule policies: what the cloudsnap workflow takes, and how many it keeps. */
export function policyCommand(): Command {
  const policy = new Command("policy")
    .alias("policies")
    .description(
      "cloudsnap schedule policies: when volumes get cloudsnaps, and how many each schedule keeps",
    );

  policy
    .command("create")
    .description("create a schedule policy (times in UTC); volumes follow it with `volume policy`")
    .argument("<name>", "policy name")
    .option("--interval <minutes>", "a cloudsnap every N minutes (aligned to the hour)")
    .option("--retain <n>", "how many of the interval's cloudsnaps to keep")
    .option("--daily <HH:MM>", "a cloudsnap every day at this time")
    .option("--daily-retain <n>", "how many daily cloudsnaps to keep")
    .option("--weekly <day@HH:MM>", "a cloudsnap every week, e.g. sunday@03:00")
    .option("--weekly-retain <n>", "how many weekly cloudsnaps to keep")
    .option("--monthly <date@HH:MM>", "a cloudsnap every month on day 1-28, e.g. 1@04:00")
    .option("--monthly-retain <n>", "how many monthly cloudsnaps to keep")
    .action(async (name: string, options: CreateOptions, command: Command) => {
      const context = contextOf(command);
      const schedules = schedulesOf(options);
      const created = await (await context.client()).createPolicy({
        name: nameArg(name, "policy"),
        schedules,
      });
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
    .description("describe a policy and the volumes that follow it")
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
    .description("delete a policy no volume follows (its cloudsnaps stay)")
    .argument("<name>", "policy name")
    .action(async (name: string, _options: object, command: Command) => {
      const context = contextOf(command);
      await (await context.client()).deletePolicy(nameArg(name, "policy"));
      context.emit({ deleted: name }, () => print(`policy "${name}" deleted`));
    });

  return policy;
}

/**
 * The schedules the options describe, checked as the store checks them, so an impossible one is a
 * usage error (exit 2) naming the option's field, e.g. `schedules.daily.time must be a UTC time`.
 */
function schedulesOf(options: CreateOptions): Schedules {
  const retain = (value: string | undefined, option: string, schedule: string) => {
    if (value === undefined)
      throw usageError(`${schedule} needs ${option} N: how many of its cloudsnaps to keep`);
    return Number(value);
  };
  const dayAndTime = (value: string, option: string, example: string) => {
    const [day, time, extra] = value.split("@");
    if (day === undefined || time === undefined || extra !== undefined)
      throw usageError(`invalid ${option} "${value}": expected ${example}`);
    return { day, time };
  };
  const requested: Record<string, object> = {};
  if (options.interval !== undefined) {
    requested["interval"] = {
      minutes: Number(options.interval),
      retain: retain(options.retain, "--retain", "--interval"),
    };
  }
  if (options.daily !== undefined) {
    requested["daily"] = {
      time: options.daily,
      retain: retain(options.dailyRetain, "--daily-retain", "--daily"),
    };
  }
  if (options.weekly !== undefined) {
    const { day, time } = dayAndTime(options.weekly, "--weekly", "a weekday and a time, e.g. sunday@03:00");
    requested["weekly"] = { day, time, retain: retain(options.weeklyRetain, "--weekly-retain", "--weekly") };
  }
  if (options.monthly !== undefined) {
    const { day, time } = dayAndTime(options.monthly, "--monthly", "a day 1-28 and a time, e.g. 1@04:00");
    requested["monthly"] = {
      date: Number(day),
      time,
      retain: retain(options.monthlyRetain, "--monthly-retain", "--monthly"),
    };
  }
  try {
    return validated(Schedules, requested, "schedule policy");
  } catch (error) {
    throw usageError((error as Error).message);
  }
}
