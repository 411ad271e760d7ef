import type { ExecutionStatus, HistoryEvent } from "@aws-sdk/client-sfn";

/**
 * An execution's history, as Step Functions records it event by event, turned into the steps an
 * operator reads: one per state entered, with how it ended, when, for how long, and why it failed.
 * Pure: `strata workflow show` feeds it GetExecutionHistory's events.
 */

export type StepStatus = "succeeded" | "retried" | "caught" | "failed" | "running" | "aborted" | "timed out";

/** The Map iteration a step ran in: the Map state's name and the item's index. */
export interface Iteration {
  map: string;
  index: number;
}

export interface WorkflowStep {
  /** The state's name, with the Map iterations it ran in: "RunOperations[2] › PollOperation". */
  name: string;
  state: string;
  /** The ASL type: Task, Map, Choice, Wait, Pass, Succeed, Fail, Parallel. */
  type: string;
  iterations: Iteration[];
  status: StepStatus;
  /** Milliseconds from the execution's start to the state's entry. */
  startedAfterMs: number;
  /** How long it ran; until the execution's end (or `now`) for a state never exited. */
  durationMs: number;
  /** Lambda invocations made for a Task state, retries included. */
  attempts: number;
  /** The last failed invocation's error name and message, e.g. Strata.Refused and its sentence. */
  error?: { name: string; message: string };
}

/** What the conversion needs of DescribeExecution's answer. */
export interface ExecutionTimes {
  status?: ExecutionStatus | string;
  startDate?: Date;
  stopDate?: Date;
  /** The execution's error and cause: a Fail state's, shown on its step. */
  error?: string;
  cause?: string;
}

/**
 * One sequence of states: the execution's top level, or one Map iteration. It runs one state at a
 * time, which is what lets events without an iteration of their own be placed.
 */
interface Lane {
  iterations: Iteration[];
  active: OpenStep | undefined;
  /** Id of its latest event: of the lanes that could take the next state, the latest active wins. */
  lastEventId: number;
  fresh: boolean;
  ended: boolean;
}

interface OpenStep {
  step: WorkflowStep;
  lane: Lane;
  enteredAt: number;
  enteredId: number;
  exited: boolean;
  inFlight: boolean;
  failedAttempts: number;
  lastAttemptFailed: boolean;
  mapFailed: boolean;
}

const ENTERED = /^(\w+)StateEntered$/;
const EXITED = /^(\w+)StateExited$/;

/**
 * The steps of an execution, in the order they were entered.
 *
 * A history records which iteration a Map iteration's start and end belong to, but not which
 * iteration a state inside it was entered by; the local Step Functions numbers its events in one
 * line (each `previousEventId` is the event before it). So each lane runs one state at a time: a
 * state entered goes to an idle lane, a fresh iteration first (lowest index), else the lane active
 * most recently; an exit closes the open state of that name entered first; a Lambda event goes to
 * the Task state waiting for one. Exact for iterations run one after another; with MaxConcurrency
 * above 1 two iterations running the same states at the same moment can swap rows.
 */
export function workflowSteps(
  events: readonly HistoryEvent[],
  execution: ExecutionTimes,
  now: number = Date.now(),
): WorkflowStep[] {
  const ordered = [...events].sort((a, b) => (a.id ?? 0) - (b.id ?? 0));
  const start = execution.startDate?.getTime() ?? ordered[0]?.timestamp?.getTime() ?? now;
  const root: Lane = { iterations: [], active: undefined, lastEventId: 0, fresh: true, ended: false };
  const lanes: Lane[] = [root];
  const open: OpenStep[] = [];
  const steps: WorkflowStep[] = [];

  for (const event of ordered) {
    const at = event.timestamp?.getTime() ?? start;
    const id = event.id ?? 0;
    const type = event.type ?? "";
    const entered = ENTERED.exec(type);
    const exited = EXITED.exec(type);
    if (entered) {
      const state = event.stateEnteredEventDetails?.name ?? "?";
      const lane = idleLane(lanes) ?? root;
      const step: WorkflowStep = {
        name: [...lane.iterations.map(({ map, index }) => `${map}[${index}]`), state].join(" › "),
        state,
        type: entered[1]!,
        iterations: lane.iterations,
        status: "running",
        startedAfterMs: Math.max(0, at - start),
        durationMs: 0,
        attempts: 0,
      };
      const opened: OpenStep = {
        step,
        lane,
        enteredAt: at,
        enteredId: id,
        exited: false,
        inFlight: false,
        failedAttempts: 0,
        lastAttemptFailed: false,
        mapFailed: false,
      };
      steps.push(step);
      open.push(opened);
      Object.assign(lane, { active: opened, lastEventId: id, fresh: false });
      continue;
    }
    if (exited) {
      const state = event.stateExitedEventDetails?.name;
      const opened = open.find((candidate) => candidate.step.state === state && !candidate.exited);
      if (!opened) continue;
      opened.exited = true;
      opened.step.durationMs = Math.max(0, at - opened.enteredAt);
      opened.step.status =
        opened.lastAttemptFailed || opened.mapFailed
          ? "caught"
          : opened.failedAttempts > 0
            ? "retried"
            : "succeeded";
      open.splice(open.indexOf(opened), 1);
      if (opened.lane.active === opened) Object.assign(opened.lane, { active: undefined, lastEventId: id });
      continue;
    }
    switch (type) {
      case "MapIterationStarted": {
        const details = event.mapIterationStartedEventDetails;
        const map = open.findLast((candidate) => candidate.step.state === details?.name);
        lanes.push({
          iterations: [
            ...(map?.lane.iterations ?? []),
            { map: details?.name ?? "?", index: details?.index ?? 0 },
          ],
          active: undefined,
          lastEventId: id,
          fresh: true,
          ended: false,
        });
        break;
      }
      case "MapIterationSucceeded":
      case "MapIterationFailed":
      case "MapIterationAborted": {
        const details =
          event.mapIterationSucceededEventDetails ??
          event.mapIterationFailedEventDetails ??
          event.mapIterationAbortedEventDetails;
        const lane = lanes.find(
          (candidate) =>
            !candidate.ended &&
            candidate.iterations.at(-1)?.map === details?.name &&
            candidate.iterations.at(-1)?.index === details?.index,
        );
        if (lane) lane.ended = true;
        break;
      }
      case "MapStateFailed":
      case "ParallelStateFailed": {
        const failed = open.findLast((candidate) => candidate.step.type === type.replace("StateFailed", ""));
        if (failed) failed.mapFailed = true;
        break;
      }
      case "LambdaFunctionScheduled": {
        const task =
          open.findLast((candidate) => candidate.step.type === "Task" && candidate.step.attempts === 0) ??
          open.find((candidate) => candidate.step.type === "Task" && !candidate.inFlight);
        if (task) {
          task.inFlight = true;
          task.step.attempts += 1;
        }
        break;
      }
      case "LambdaFunctionSucceeded":
      case "LambdaFunctionFailed":
      case "LambdaFunctionTimedOut":
      case "LambdaFunctionScheduleFailed":
      case "LambdaFunctionStartFailed": {
        const task =
          open.find((candidate) => candidate.step.type === "Task" && candidate.inFlight) ??
          open.find((candidate) => candidate.step.type === "Task");
        if (!task) break;
        task.inFlight = false;
        const failure =
          event.lambdaFunctionFailedEventDetails ??
          event.lambdaFunctionTimedOutEventDetails ??
          event.lambdaFunctionScheduleFailedEventDetails ??
          event.lambdaFunctionStartFailedEventDetails;
        task.lastAttemptFailed = type !== "LambdaFunctionSucceeded";
        if (task.lastAttemptFailed) {
          task.failedAttempts += 1;
          task.step.error = {
            name: failure?.error ?? type.replace("LambdaFunction", "Lambda."),
            message: errorMessageOf(failure?.cause) ?? "",
          };
        }
        break;
      }
      default:
        break;
    }
  }

  // States never exited: the execution stopped in them, or still runs them.
  const end = execution.stopDate?.getTime() ?? (execution.status === "RUNNING" ? now : undefined);
  for (const opened of open) {
    const { step } = opened;
    step.durationMs = end === undefined ? 0 : Math.max(0, end - opened.enteredAt);
    step.status = unfinishedStatus(step, execution.status);
    if (step.type === "Fail" && execution.error !== undefined)
      step.error = { name: execution.error, message: errorMessageOf(execution.cause) ?? "" };
  }
  return steps;
}

function idleLane(lanes: readonly Lane[]): Lane | undefined {
  const idle = lanes.filter((lane) => !lane.ended && lane.active === undefined);
  const fresh = idle.filter((lane) => lane.fresh && lane.iterations.length > 0);
  if (fresh.length > 0)
    return fresh.sort((a, b) => a.iterations.at(-1)!.index - b.iterations.at(-1)!.index)[0];
  return idle.sort((a, b) => b.lastEventId - a.lastEventId)[0];
}

function unfinishedStatus(step: WorkflowStep, execution: ExecutionTimes["status"]): StepStatus {
  if (step.type === "Fail") return "failed";
  switch (execution) {
    case "RUNNING":
    case undefined:
      return "running";
    case "ABORTED":
      return "aborted";
    case "TIMED_OUT":
      return "timed out";
    case "SUCCEEDED":
      // A Succeed state, or the last state of a machine, is closed by the execution's end.
      return "succeeded";
    default:
      return "failed";
  }
}

/**
 * A Lambda error's Cause is the runtime's error payload as JSON ({errorMessage, errorType, trace}):
 * its errorMessage is the sentence to show. Any other cause is shown as it is.
 */
export function errorMessageOf(cause: string | undefined): string | undefined {
  if (cause === undefined || cause === "") return undefined;
  try {
    const parsed: unknown = JSON.parse(cause);
    if (parsed !== null && typeof parsed === "object" && "errorMessage" in parsed) {
      const { errorMessage } = parsed;
      if (typeof errorMessage === "string") return errorMessage;
    }
  } catch {
    // Not JSON: a Fail state's Cause, or a stop's.
  }
  return cause;
}

/** "12 ms", "4.2 s", "42 s", "3 min 5 s", "2 h 7 min": for steps and executions alike. */
export function formatDuration(ms: number): string {
  if (ms < 1000) return `${Math.max(0, Math.round(ms))} ms`;
  if (ms < 10_000) return `${(Math.floor(ms / 100) / 10).toFixed(1)} s`;
  const seconds = Math.floor(ms / 1000);
  if (seconds < 60) return `${seconds} s`;
  const minutes = Math.floor(seconds / 60);
  if (minutes < 60) return seconds % 60 === 0 ? `${minutes} min` : `${minutes} min ${seconds % 60} s`;
  const hours = Math.floor(minutes / 60);
  return minutes % 60 === 0 ? `${hours} h` : `${hours} h ${minutes % 60} min`;
}
