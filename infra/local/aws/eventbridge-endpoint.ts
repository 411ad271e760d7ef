import type { PutEventsResultEntry } from "@aws-sdk/client-eventbridge";
import type { AwsProtocolHandler } from "./http.js";
import { jsonProtocol } from "./json-protocol.js";
import { AwsServiceError } from "./service-error.js";

/** One event a caller put, checked and parsed: what the local event bus matches its rules against. */
export interface EventBusEntry {
  source: string;
  detailType: string;
  detail: Record<string, unknown>;
  resources: string[];
  /** The time the caller gave; absent, the bus stamps the time it received the event. */
  time?: Date;
  /** Absent means the default bus. */
  eventBusName?: string;
}

/**
 * The local event bus, as the PutEvents endpoint hands it the entries that passed EventBridge's
 * checks. It answers one result per entry, in order: the EventId it gave the event, or the
 * ErrorCode/ErrorMessage of a refusal of its own (an unknown bus, say).
 */
export interface EventBusApi {
  putEvents(entries: EventBusEntry[]): Promise<PutEventsResultEntry[]>;
}

/** PutEvents' documented limits: 1 to 10 entries, under 256 KB in all (sized as EventBridge sizes them). */
const MAX_ENTRIES = 10;
const MAX_TOTAL_ENTRY_BYTES = 256 * 1024;

/**
 * EventBridge on the wire: AWS JSON 1.1 with `X-Amz-Target: AWSEvents.PutEvents`. A request that
 * breaks the request-wide limits is refused whole (ValidationException); an entry that is invalid
 * on its own fails alone with EventBridge's per-entry code (InvalidArgument, MalformedDetail) while
 * the others are put, and FailedEntryCount counts both kinds of failure.
 */
export function eventBridgeProtocol(bus: EventBusApi): AwsProtocolHandler {
  return jsonProtocol({
    version: "1.1",
    targetPrefix: "AWSEvents",
    operations: { PutEvents: (input) => putEvents(bus, input["Entries"]) },
  });
}

async function putEvents(bus: EventBusApi, entries: unknown) {
  if (!Array.isArray(entries) || entries.length < 1 || entries.length > MAX_ENTRIES)
    throw new AwsServiceError(
      "ValidationException",
      `1 validation error detected: Value at 'entries' failed to satisfy constraint: Member must have length between 1 and ${MAX_ENTRIES}`,
    );
  const raw = entries.map((entry: unknown) =>
    typeof entry === "object" && entry !== null ? (entry as Record<string, unknown>) : {},
  );
  if (raw.reduce((total, entry) => total + entrySize(entry), 0) > MAX_TOTAL_ENTRY_BYTES)
    throw new AwsServiceError(
      "ValidationException",
      "Total size of the entries in the request is over the limit.",
    );

  const checked = raw.map(checkEntry);
  const accepted = checked.filter((entry): entry is EventBusEntry => !("ErrorCode" in entry));
  const put = accepted.length > 0 ? await bus.putEvents(accepted) : [];
  if (put.length !== accepted.length)
    throw new Error(`the event bus answered ${put.length} of ${accepted.length}`);
  let next = 0;
  const results = checked.map((entry) => ("ErrorCode" in entry ? entry : put[next++]!));
  return { FailedEntryCount: results.filter((result) => result.ErrorCode).length, Entries: results };
}

type Refused = Required<Pick<PutEventsResultEntry, "ErrorCode" | "ErrorMessage">>;

function checkEntry(entry: Record<string, unknown>): EventBusEntry | Refused {
  const { Source, DetailType, Detail, Resources, Time, EventBusName } = entry;
  for (const [name, value] of [
    ["Source", Source],
    ["DetailType", DetailType],
    ["Detail", Detail],
  ] as const)
    if (typeof value !== "string" || value === "")
      return refused(
        "InvalidArgument",
        `Parameter ${name} is not valid. Reason: ${name} is a required argument.`,
      );
  let detail: unknown;
  try {
    detail = JSON.parse(Detail as string);
  } catch {
    return refused("MalformedDetail", "Detail is malformed.");
  }
  if (typeof detail !== "object" || detail === null || Array.isArray(detail))
    return refused("MalformedDetail", "Detail is malformed: it must be a JSON object.");
  if (Resources !== undefined && !(Array.isArray(Resources) && Resources.every((r) => typeof r === "string")))
    return refused(
      "InvalidArgument",
      "Parameter Resources is not valid. Reason: it must be a list of strings.",
    );
  if (Time !== undefined && typeof Time !== "number")
    return refused("InvalidArgument", "Parameter Time is not valid. Reason: it must be a timestamp.");
  return {
    source: Source as string,
    detailType: DetailType as string,
    detail: detail as Record<string, unknown>,
    resources: (Resources as string[] | undefined) ?? [],
    ...(Time === undefined ? {} : { time: new Date(Time * 1000) }),
    ...(typeof EventBusName === "string" && EventBusName !== "" ? { eventBusName: EventBusName } : {}),
  };
}

const refused = (code: string, message: string): Refused => ({ ErrorCode: code, ErrorMessage: message });

/** EventBridge's documented entry size: Time counts 14 bytes, the strings their UTF-8 length. */
function entrySize(entry: Record<string, unknown>): number {
  const bytes = (value: unknown) => (typeof value === "string" ? Buffer.byteLength(value, "utf8") : 0);
  const resources = Array.isArray(entry["Resources"]) ? entry["Resources"] : [];
  return (
    (entry["Time"] === undefined ? 0 : 14) +
    bytes(entry["Source"]) +
    bytes(entry["DetailType"]) +
    bytes(entry["Detail"]) +
    resources.reduce((total: number, resource: unknown) => total + bytes(resource), 0)
  );
}
