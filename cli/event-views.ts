import { StrataDetailType } from "../core/events.js";
import { formatSize, parseDuration } from "../core/units.js";
import { usageError } from "./failures.js";
import { type Cell, formatTable } from "./output.js";
import { formatClock } from "./workflow-views.js";

/**
 * How the bus's events read in a terminal: one line each, what happened to what. Pure functions of
 * the EventBridge envelopes the local cloud logs in `<dir>/events.jsonl`.
 */

/** An EventBridge envelope as logged; fields other than these are kept for --json, not read. */
export interface BusEvent {
  id?: string;
  "detail-type"?: string;
  source?: string;
  time?: string;
  resources?: string[];
  detail?: Record<string, unknown>;
}

/** Each known detail type's one-line summary; undefined when the detail lacks what it reads. */
const SUMMARIES: Record<string, (detail: Detail) => string | undefined> = {
  [StrataDetailType.nodeOffline]: nodeHealth,
  [StrataDetailType.nodeOnline]: nodeHealth,
  [StrataDetailType.zoneOffline]: (d) => join(d.text("zone"), ": ", d.text("reason")),
  [StrataDetailType.zoneOnline]: (d) => join(d.text("zone"), ": ", d.text("reason")),
  [StrataDetailType.redundancyRestored]: (d) => {
    const bytes = d.number("bytesCopied");
    return join(
      d.text("volume"),
      " ",
      d.text("how"),
      ", ",
      bytes === undefined ? undefined : formatSize(bytes),
      " copied",
    );
  },
  [StrataDetailType.recoveryFinished]: recoveryFinished,
  [StrataDetailType.cloudsnapCompleted]: (d) => {
    const expired = d.list("expired")?.length ?? 0;
    const retention = d.text("retentionError");
    const others = (d.list("cloudsnaps")?.length ?? 1) - 1;
    return join(
      d.text("volume"),
      ": ",
      d.text("cloudsnap"),
      ` (${d.text("schedule") ?? "by hand"})`,
      others > 0 ? ` with ${others} more of its group` : "",
      retention === undefined ? `, ${expired} expired` : `; retention stopped: ${retention}`,
    );
  },
  [StrataDetailType.cloudsnapFailed]: scheduledFailure,
  [StrataDetailType.snapshotCompleted]: (d) => {
    const volumes = d.list("volumes")?.filter((volume) => typeof volume === "string") ?? [];
    return join(
      volumes.length > 0 ? volumes.join(", ") : d.text("volume"),
      ": snapshot ",
      d.text("snapshot"),
      `, ${d.list("expired")?.length ?? 0} expired`,
    );
  },
  [StrataDetailType.snapshotFailed]: scheduledFailure,
  [StrataDetailType.restoreCompleted]: (d) => join(d.text("volume"), " from ", d.text("cloudsnap")),
  [StrataDetailType.restoreFailed]: (d) =>
    join(d.text("volume"), " from ", d.text("cloudsnap"), ": ", d.text("reason")),
  "EC2 Instance State-change Notification": (d) => join(d.text("instance-id"), " ", d.text("state")),
  "EC2 Spot Instance Interruption Warning": (d) =>
    join(d.text("instance-id"), ": spot interruption, ", d.text("instance-action")),
  "EC2 Instance-terminate Lifecycle Action": (d) => lifecycleAction(d, "terminating"),
  "EC2 Instance-launch Lifecycle Action": (d) => lifecycleAction(d, "launching"),
  "Autoshift In Progress": (d) => join("traffic shifted away from ", d.path("metadata", "awayFrom")),
  "Autoshift Completed": (d) => join("traffic back in ", d.path("metadata", "awayFrom")),
  "AWS Health Event": (d) =>
    join(d.text("service"), " ", d.text("eventTypeCategory"), ` ${d.text("statusCode") ?? ""}`.trimEnd()) +
    (d.text("availabilityZone") === undefined ? "" : ` in ${d.text("availabilityZone")}`),
};

/** e.g. "pg-data (daily): the pre-hook failed". */
function scheduledFailure(d: Detail): string | undefined {
  return join(d.text("volume"), ` (${d.text("schedule") ?? "by hand"}): `, d.text("reason"));
}

/** e.g. "node-2 (local-b): no heartbeat for 12s". */
function nodeHealth(d: Detail): string | undefined {
  return join(d.text("nodeId"), " (", d.text("zone"), "): ", d.text("reason"));
}

/** e.g. "i-0abc terminating (hook strata-drain, group strata-local-a)". */
function lifecycleAction(d: Detail, what: string): string | undefined {
  return join(
    d.text("EC2InstanceId"),
    ` ${what} (hook `,
    d.text("LifecycleHookName"),
    ", group ",
    d.text("AutoScalingGroupName"),
    ")",
  );
}

/** e.g. "node-loss of node-2: 5 restored, 1 failed (vol-x: reason)". */
function recoveryFinished(d: Detail): string | undefined {
  const restored = d.list("restored");
  const failed = d.list("failed");
  if (restored === undefined || failed === undefined) return undefined;
  const reasons = failed
    .map((entry) =>
      entry !== null && typeof entry === "object" ? new Detail(entry as Record<string, unknown>) : undefined,
    )
    .map((entry) => (entry ? join(entry.text("volume"), ": ", entry.text("reason")) : undefined) ?? "?");
  const failures = failed.length === 0 ? "0 failed" : `${failed.length} failed (${reasons.join("; ")})`;
  const stopped = d.text("error") === undefined ? "" : `; stopped short: ${d.text("error")}`;
  return join(
    d.text("workflow"),
    " of ",
    d.text("subject"),
    `: ${restored.length} restored, ${failures}${stopped}`,
  );
}

/** The event in one line: its detail type's summary, else the detail's keys. */
export function summarizeEvent(event: BusEvent): string {
  const detail = new Detail(event.detail ?? {});
  const summary = SUMMARIES[event["detail-type"] ?? ""]?.(detail);
  if (summary !== undefined) return summary;
  const keys = Object.keys(event.detail ?? {});
  return keys.length === 0 ? "-" : `{${keys.join(", ")}}`;
}

/** The detail's fields, read without trusting them: a field of the wrong type reads as missing. */
class Detail {
  constructor(private readonly fields: Record<string, unknown>) {}

  text(key: string): string | undefined {
    const value = this.fields[key];
    return typeof value === "string" || typeof value === "number" ? String(value) : undefined;
  }

  number(key: string): number | undefined {
    const value = this.fields[key];
    return typeof value === "number" ? value : undefined;
  }

  list(key: string): unknown[] | undefined {
    const value = this.fields[key];
    return Array.isArray(value) ? value : undefined;
  }

  path(key: string, inner: string): string | undefined {
    const value = this.fields[key];
    return value !== null && typeof value === "object"
      ? new Detail(value as Record<string, unknown>).text(inner)
      : undefined;
  }
}

/** The parts joined, or undefined if one of them is missing. */
function join(...parts: (string | undefined)[]): string | undefined {
  return parts.some((part) => part === undefined) ? undefined : parts.join("");
}

const HEADERS = ["time", "source", "detail-type", "summary"];

function eventCells(event: BusEvent): Cell[] {
  return [
    event.time === undefined ? "-" : formatClock(event.time),
    event.source ?? "-",
    event["detail-type"] ?? "-",
    summarizeEvent(event),
  ];
}

export function eventTable(events: readonly BusEvent[]): string {
  return formatTable(HEADERS, events.map(eventCells));
}

/**
 * While following, rows are printed as events come, so columns cannot be sized to their contents:
 * these widths fit the detail types and sources Strata's rules listen to.
 */
const FOLLOW_WIDTHS = [8, 15, 39];

export function followHeader(): string {
  return followLine(HEADERS.map((header) => header.toUpperCase()));
}

export function followRow(event: BusEvent): string {
  return followLine(eventCells(event).map(String));
}

const followLine = (cells: string[]) =>
  cells
    .map((cell, column) => (column < FOLLOW_WIDTHS.length ? cell.padEnd(FOLLOW_WIDTHS[column]!) : cell))
    .join("   ")
    .trimEnd();

/** `--since 10m`: 30s, 10m, 2h, 1d, or an ISO 8601 time; the earliest time to show, in ms. */
export function sinceArg(text: string, now = Date.now()): number {
  const relative = parseDuration(text);
  if (relative !== undefined) return now - relative;
  const absolute = Date.parse(text);
  if (/^\d{4}-\d\d-\d\d/.test(text) && !Number.isNaN(absolute)) return absolute;
  throw usageError(`invalid --since "${text}": use a duration like 30s, 10m, 2h or 1d, or an ISO 8601 time`);
}

export interface EventFilter {
  since?: number;
  source?: string;
}

export function matchesFilter(event: BusEvent, filter: EventFilter): boolean {
  if (filter.source !== undefined && event.source !== filter.source) return false;
  if (filter.since !== undefined) {
    const time = Date.parse(event.time ?? "");
    if (Number.isNaN(time) || time < filter.since) return false;
  }
  return true;
}
