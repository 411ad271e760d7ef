import { type EventBridgeClient, PutEventsCommand } from "@aws-sdk/client-eventbridge";
import type { StrataEventEntry } from "../../core/events.js";
import { TransientError } from "./errors.js";

/** PutEvents takes at most this many entries per call. */
const PUT_EVENTS_BATCH = 10;

/** Puts Strata's events on the bus; an entry the bus refused fails the call, naming its error. */
export async function publishEvents(
  events: EventBridgeClient,
  busName: string,
  entries: readonly StrataEventEntry[],
): Promise<number> {
  for (let start = 0; start < entries.length; start += PUT_EVENTS_BATCH) {
    const batch = entries
      .slice(start, start + PUT_EVENTS_BATCH)
      .map((entry) => ({ ...entry, EventBusName: busName }));
    const answer = await events.send(new PutEventsCommand({ Entries: batch }));
    if ((answer.FailedEntryCount ?? 0) > 0) {
      const failure = answer.Entries?.find((entry) => entry.ErrorCode !== undefined);
      throw new TransientError(
        `the event bus refused ${answer.FailedEntryCount} event(s): ${failure?.ErrorCode}: ${failure?.ErrorMessage}`,
      );
    }
  }
  return entries.length;
}
