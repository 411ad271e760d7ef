import type { DescribeExecutionOutput, ExecutionListItem } from "@aws-sdk/client-sfn";
import { type Cell, formatDetails, formatTable, indent } from "./output.js";
import { errorMessageOf, formatDuration, type WorkflowStep } from "./workflow-steps.js";

/** How the recovery workflows' executions read in a terminal. Pure functions of the API's answers. */

/** One execution of `strata workflow list`: ListExecutions' item with its workflow's short name. */
export interface WorkflowExecution {
  name: string;
  workflow: string;
  status: string;
  startDate: string;
  stopDate?: string;
  executionArn: string;
}

const MACHINE_PREFIX = "strata-";

/** "node-loss" for arn:…:stateMachine:strata-node-loss (and for arn:…:execution:strata-node-loss:x). */
export function workflowOfArn(arn: string | undefined): string {
  const machine = /:(?:stateMachine|execution):([^:]+)/.exec(arn ?? "")?.[1] ?? "?";
  return machine.startsWith(MACHINE_PREFIX) ? machine.slice(MACHINE_PREFIX.length) : machine;
}

export function workflowExecution(item: ExecutionListItem): WorkflowExecution {
  return {
    name: item.name ?? "?",
    workflow: workflowOfArn(item.stateMachineArn),
    status: item.status ?? "?",
    startDate: (item.startDate ?? new Date(0)).toISOString(),
    ...(item.stopDate ? { stopDate: item.stopDate.toISOString() } : {}),
    executionArn: item.executionArn ?? "?",
  };
}

/** Newest first, as an operator looks for the run that just happened. */
export function workflowTable(executions: readonly WorkflowExecution[], now = Date.now()): string {
  return formatTable(
    ["name", "workflow", "status", "started", "duration"],
    [...executions]
      .sort((a, b) => Date.parse(b.startDate) - Date.parse(a.startDate))
      .map((execution) => [
        execution.name,
        execution.workflow,
        execution.status,
        formatClock(execution.startDate),
        runningTime(execution.startDate, execution.stopDate, now),
      ]),
  );
}

/** The header of `strata workflow show`, then its steps. */
export function workflowDescription(
  execution: DescribeExecutionOutput,
  steps: readonly WorkflowStep[],
  uncertainMaps: readonly string[] = [],
  now = Date.now(),
): string {
  const started = execution.startDate?.toISOString();
  const fields: [string, Cell][] = [
    ["Name", execution.name ?? "?"],
    ["Workflow", workflowOfArn(execution.stateMachineArn)],
    ["Status", execution.status ?? "?"],
    ["Started", started === undefined ? "-" : `${formatClock(started)} (${started})`],
    ["Duration", started === undefined ? "-" : runningTime(started, execution.stopDate?.toISOString(), now)],
    ["Input", summarizeInput(execution.input)],
  ];
  if (execution.error !== undefined || execution.cause !== undefined) {
    fields.push(["Error", execution.error ?? "-"]);
    fields.push(["Cause", errorMessageOf(execution.cause) ?? "-"]);
  }
  fields.push(["ARN", execution.executionArn ?? "?"]);
  const parts = [formatDetails(fields)];
  parts.push(steps.length === 0 ? "Steps:  <none>" : `Steps:\n${indent(stepTable(steps))}`);
  for (const map of uncertainMaps)
    parts.push(
      `Note: iterations of ${map} ran at the same time, and this history does not say which iteration ` +
        "each of their events belongs to: rows of the same state may be swapped between iterations.",
    );
  return parts.join("\n");
}

/** One row per state entered; a failure's message where the operator looks for it. */
export function stepTable(steps: readonly WorkflowStep[]): string {
  return formatTable(
    ["state", "type", "status", "started", "duration", "detail"],
    steps.map((step) => [
      step.name,
      step.type,
      step.status,
      `+${formatDuration(step.startedAfterMs)}`,
      step.status === "running"
        ? `${formatDuration(step.durationMs)} so far`
        : formatDuration(step.durationMs),
      stepDetail(step),
    ]),
  );
}

/** e.g. "2 attempts; Strata.Transient: the state table is throttling", or "-". */
function stepDetail(step: WorkflowStep): string {
  const parts: string[] = [];
  if (step.attempts > 1) parts.push(`${step.attempts} attempts`);
  if (step.error !== undefined) {
    const { name, message } = step.error;
    parts.push(message === "" ? name : `${name}: ${message}`);
  }
  return parts.length === 0 ? "-" : parts.join("; ");
}

/** hh:mm:ss in this machine's time zone. */
export function formatClock(time: string | Date): string {
  const date = new Date(time);
  const pad = (value: number) => String(value).padStart(2, "0");
  return `${pad(date.getHours())}:${pad(date.getMinutes())}:${pad(date.getSeconds())}`;
}

function runningTime(start: string, stop: string | undefined, now: number): string {
  const end = stop === undefined ? now : Date.parse(stop);
  const duration = formatDuration(end - Date.parse(start));
  return stop === undefined ? `${duration} so far` : duration;
}

const MAX_INPUT = 100;

/** `nodeId=node-2, reason=no heartbeat for 12s`: an execution's input on one line, cut if long. */
export function summarizeInput(input: string | undefined): string {
  if (input === undefined || input === "") return "-";
  let parsed: unknown;
  try {
    parsed = JSON.parse(input);
  } catch {
    return cut(input);
  }
  if (parsed === null || typeof parsed !== "object" || Array.isArray(parsed)) return cut(input);
  const pairs = Object.entries(parsed).map(
    ([key, value]) => `${key}=${typeof value === "string" ? value : JSON.stringify(value)}`,
  );
  return pairs.length === 0 ? "{}" : cut(pairs.join(", "));
}

const cut = (text: string) => (text.length <= MAX_INPUT ? text : `${text.slice(0, MAX_INPUT - 1)}…`);
