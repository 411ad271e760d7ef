import { join } from "node:path";
import { Command } from "commander";
import { EVENTS_FILE } from "../../infra/local/cloud-names.js";
import { contextOf } from "../context.js";
import { EventLog } from "../event-log.js";
import {
  type BusEvent,
  type EventFilter,
  eventTable,
  followHeader,
  followRow,
  matchesFilter,
  sinceArg,
} from "../event-views.js";
import { print } from "../output.js";

interface EventsOptions {
  follow?: boolean;
  since?: string;
  source?: string;
}

/**
 * The local cloud's event bus, as its log in `<dir>/events.jsonl` has it: node and zone health,
 * EC2 and Auto Scaling changes, and what the recovery workflows did. Read without the cluster
 * running too, as a record of what happened.
 */
export function eventsCommand(): Command {
  return new Command("events")
    .description("the events put on the local cloud's bus, oldest first; -f keeps printing new ones")
    .option("-f, --follow", "keep printing events as they are put, until Ctrl-C")
    .option("--since <when>", "only events from this long ago (30s, 10m, 2h, 1d) or this ISO 8601 time")
    .option("--source <source>", "only events from this source, e.g. strata, aws.ec2, aws.autoscaling")
    .action(async (options: EventsOptions, command: Command) => {
      const context = contextOf(command);
      const filter: EventFilter = {
        ...(options.since === undefined ? {} : { since: sinceArg(options.since) }),
        ...(options.source === undefined ? {} : { source: options.source }),
      };
      const log = new EventLog(join(context.dir, EVENTS_FILE));
      const shown = (events: BusEvent[]) => events.filter((event) => matchesFilter(event, filter));
      const events = shown(await log.readNew());

      if (options.follow !== true) {
        if (context.json) for (const event of events) print(JSON.stringify(event));
        else print(events.length === 0 ? noEvents(filter) : eventTable(events));
        return;
      }

      let headed = false;
      const printEvents = (batch: BusEvent[]) => {
        for (const event of batch) {
          if (context.json) print(JSON.stringify(event));
          else {
            if (!headed) print(followHeader());
            headed = true;
            print(followRow(event));
          }
        }
      };
      printEvents(events);
      const stop = new AbortController();
      const interrupted = () => stop.abort();
      process.once("SIGINT", interrupted);
      process.once("SIGTERM", interrupted);
      try {
        await log.follow((batch) => printEvents(shown(batch)), stop.signal);
      } finally {
        process.off("SIGINT", interrupted);
        process.off("SIGTERM", interrupted);
      }
    });
}

function noEvents(filter: EventFilter): string {
  return filter.since === undefined && filter.source === undefined ? "No events yet." : "No matching events.";
}
