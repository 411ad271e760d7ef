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
  /** The lane of the Map state this iteration belongs to; none for the top level. */
  parent: Lane | undefined;
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
  input: string | undefined;
  inFlight: boolean;
  failedAttempts: number;
  lastAttemptFailed: boolean;
  mapFailed: boolean;
}

/** The steps, and the Map states whose rows may be swapped between iterations (see workflowSteps). */
export interface WorkflowSteps {
  steps: WorkflowStep[];
  uncertainMaps: string[];
}

const ENTERED = /^(\w+)StateEntered$/;
const EXITED = /^(\w+)StateExited$/;

/**
 * The steps of an execution, in the order they were entered.
 *
 * Which Map iteration an event belongs to is told by its `previousEventId` when the history chains
 * each iteration's events on their own (a history whose every event points at the one recorded just
 * before tells nothing). Without that chain, as the local Step Functions records it, each lane runs
 * one state at a time: a state entered goes to an idle lane, a fresh iteration first (lowest
 * index), else the lane active most recently; an exit closes the open state of that name whose
 * input its output carries on, else the one entered first; a Lambda invocation goes to the Task
 * state waiting for one (the one it was given the input of, if several), and its result to the Task
 * that exits on it (see completedTask). That is exact for iterations run one after another; when two iterations of a Map
 * run states at the same time, rows of the same state may be swapped between them, and the Map is
 * named in `uncertainMaps`.
 */
export function workflowSteps(
  events: readonly HistoryEvent[],
  execution: ExecutionTimes,
  now: number = Date.now(),
): WorkflowSteps {
  const ordered = [...events].sort((a, b) => (a.id ?? 0) - (b.id ?? 0));
  const chained = ordered.some(
    ({ id, previousEventId }) =>
      (id ?? 0) > 1 && previousEventId !== undefined && previousEventId !== (id ?? 0) - 1,
  );
  const start = execution.startDate?.getTime() ?? ordered[0]?.timestamp?.getTime() ?? now;
  const root: Lane = {
    iterations: [],
    parent: undefined,
    active: undefined,
    lastEventId: 0,
    fresh: true,
    ended: false,
  };
  const lanes: Lane[] = [root];
  const laneOfEvent = new Map<number, Lane>();
  const open: OpenStep[] = [];
  const steps: WorkflowStep[] = [];
  const uncertain = new Set<string>();
  const openTasks = () => open.filter((candidate) => candidate.step.type === "Task");

  /** The open state an unchained exit closes: of those of its name, the one whose input it carries on. */
  const exitTarget = (exit: HistoryEvent): OpenStep | undefined => {
    const named = open.filter((candidate) => candidate.step.state === exit.stateExitedEventDetails?.name);
    if (named.length < 2) return named[0];
    const output = exit.stateExitedEventDetails?.output;
    const carried = named.filter((candidate) => carriesInput(output, candidate.input));
    return carried.length === 1 ? carried[0] : named[0];
  };

  for (const [position, event] of ordered.entries()) {
    const at = event.timestamp?.getTime() ?? start;
    const id = event.id ?? 0;
    const type = event.type ?? "";
    /** The lane the history chains this event to, when it chains them. */
    const chainedTo = chained ? laneOfEvent.get(event.previousEventId ?? 0) : undefined;
    let lane = chainedTo ?? root;
    const entered = ENTERED.exec(type);
    const exited = EXITED.exec(type);

    if (entered) {
      const state = event.stateEnteredEventDetails?.name ?? "?";
      if (!chained) lane = idleLane(lanes) ?? root;
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
        input: event.stateEnteredEventDetails?.input,
        inFlight: false,
        failedAttempts: 0,
        lastAttemptFailed: false,
        mapFailed: false,
      };
      steps.push(step);
      open.push(opened);
      Object.assign(lane, { active: opened, lastEventId: id, fresh: false });
      if (!chained) noteOverlap(lanes, lane, uncertain);
    } else if (exited) {
      const state = event.stateExitedEventDetails?.name;
      const inLane = chainedTo?.active?.step.state === state ? chainedTo?.active : undefined;
      const opened = chained
        ? (inLane ?? open.find((candidate) => candidate.step.state === state))
        : exitTarget(event);
      if (opened) {
        opened.step.durationMs = Math.max(0, at - opened.enteredAt);
        opened.step.status =
          opened.lastAttemptFailed || opened.mapFailed
            ? "caught"
            : opened.failedAttempts > 0
              ? "retried"
              : "succeeded";
        open.splice(open.indexOf(opened), 1);
        lane = opened.lane;
        if (lane.active === opened) Object.assign(lane, { active: undefined, lastEventId: id });
      }
    } else if (type === "MapIterationStarted") {
      const details = event.mapIterationStartedEventDetails;
      const map = open.findLast(
        (candidate) => candidate.step.state === details?.name && (!chainedTo || candidate.lane === chainedTo),
      );
      lane = {
        iterations: [
          ...(map?.lane.iterations ?? []),
          { map: details?.name ?? "?", index: details?.index ?? 0 },
        ],
        parent: map?.lane,
        active: undefined,
        lastEventId: id,
        fresh: true,
        ended: false,
      };
      lanes.push(lane);
    } else if (/^MapIteration(Succeeded|Failed|Aborted)$/.test(type)) {
      const details =
        event.mapIterationSucceededEventDetails ??
        event.mapIterationFailedEventDetails ??
        event.mapIterationAbortedEventDetails;
      const iteration = lanes.find(
        (candidate) =>
          !candidate.ended &&
          candidate.iterations.at(-1)?.map === details?.name &&
          candidate.iterations.at(-1)?.index === details?.index,
      );
      if (iteration) {
        iteration.ended = true;
        lane = iteration.parent ?? root;
      }
    } else if (type === "MapStateFailed" || type === "ParallelStateFailed") {
      const kind = type.replace("StateFailed", "");
      const failed =
        chainedTo?.active?.step.type === kind
          ? chainedTo.active
          : open.findLast((candidate) => candidate.step.type === kind);
      if (failed) failed.mapFailed = true;
    } else if (type === "LambdaFunctionScheduled") {
      const task = chained
        ? chainedTask(chainedTo)
        : scheduledTask(openTasks(), event.lambdaFunctionScheduledEventDetails?.input);
      if (task) {
        task.inFlight = true;
        task.step.attempts += 1;
        lane = task.lane;
      }
    } else if (/^LambdaFunction(Succeeded|Failed|TimedOut|ScheduleFailed|StartFailed)$/.test(type)) {
      const task = chained ? chainedTask(chainedTo) : completedTask(openTasks(), position);
      if (task) {
        lane = task.lane;
        task.inFlight = false;
        task.lastAttemptFailed = type !== "LambdaFunctionSucceeded";
        if (task.lastAttemptFailed) {
          const failure =
            event.lambdaFunctionFailedEventDetails ??
            event.lambdaFunctionTimedOutEventDetails ??
            event.lambdaFunctionScheduleFailedEventDetails ??
            event.lambdaFunctionStartFailedEventDetails;
          task.failedAttempts += 1;
          task.step.error = {
            name: failure?.error ?? type.replace("LambdaFunction", "Lambda."),
            message: errorMessageOf(failure?.cause) ?? "",
          };
        }
      }
    } else if (type === "LambdaFunctionStarted" && !chained) {
      lane = openTasks().find((candidate) => candidate.inFlight)?.lane ?? root;
    }
    laneOfEvent.set(id, lane);
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

  /**
   * The Task an unchained Lambda result is for. Locally a Task exits as soon as its invocation
   * succeeds, so with several invocations in flight a success followed at once by an exit is the
   * exiting Task's, and any other result is not for a Task that exits so later on (before the next
   * invocation starts); of those left, the Task that has waited longest.
   */
  function completedTask(tasks: readonly OpenStep[], position: number): OpenStep | undefined {
    const inFlight = tasks.filter((task) => task.inFlight);
    if (inFlight.length < 2) return inFlight[0] ?? tasks[0];
    const exitAfterSuccess = (at: number) => {
      const [result, exit] = [ordered[at], ordered[at + 1]];
      return result?.type === "LambdaFunctionSucceeded" && exit?.type === "TaskStateExited"
        ? exitTarget(exit)
        : undefined;
    };
    const own = exitAfterSuccess(position);
    if (own?.inFlight) return own;
    const later = new Set<OpenStep>();
    for (let at = position + 1; at < ordered.length; at++) {
      if (ordered[at]?.type === "LambdaFunctionScheduled") break;
      const target = exitAfterSuccess(at);
      if (target) later.add(target);
    }
    return inFlight.find((task) => !later.has(task)) ?? inFlight[0];
  }

  return { steps, uncertainMaps: [...uncertain] };
}

/** The Task state a chained Lambda event belongs to: the one its lane is in. */
function chainedTask(lane: Lane | undefined): OpenStep | undefined {
  return lane?.active?.step.type === "Task" ? lane.active : undefined;
}

/**
 * The Task an unchained LambdaFunctionScheduled is for: of those not waiting for an invocation, the
 * one given the same input (a Task without Parameters passes its input on as it is), else the one
 * entered last that has made none yet, else the oldest (a retry).
 */
function scheduledTask(tasks: readonly OpenStep[], input: string | undefined): OpenStep | undefined {
  const waiting = tasks.filter((task) => !task.inFlight);
  const sameInput = input === undefined ? [] : waiting.filter((task) => sameJson(task.input, input));
  if (sameInput.length === 1) return sameInput[0];
  const pool = sameInput.length > 1 ? sameInput : waiting;
  return pool.findLast((task) => task.step.attempts === 0) ?? pool[0];
}

/**
 * Whether a state's output carries its input on: every field of the input object is in the output
 * with the same value, as a ResultPath that adds the result to the input leaves it.
 */
function carriesInput(output: string | undefined, input: string | undefined): boolean {
  const parse = (text: string | undefined): unknown => {
    try {
      return text === undefined ? undefined : JSON.parse(text);
    } catch {
      return undefined;
    }
  };
  const out = parse(output);
  const into = parse(input);
  if (!isObject(out) || !isObject(into)) return false;
  return Object.entries(into).every(([key, value]) => JSON.stringify(out[key]) === JSON.stringify(value));
}

const isObject = (value: unknown): value is Record<string, unknown> =>
  value !== null && typeof value === "object" && !Array.isArray(value);

function sameJson(a: string | undefined, b: string): boolean {
  if (a === undefined) return false;
  try {
    return JSON.stringify(JSON.parse(a)) === JSON.stringify(JSON.parse(b));
  } catch {
    return a === b;
  }
}

function idleLane(lanes: readonly Lane[]): Lane | undefined {
  const idle = lanes.filter((lane) => !lane.ended && lane.active === undefined);
  const fresh = idle.filter((lane) => lane.fresh && lane.iterations.length > 0);
  if (fresh.length > 0)
    return fresh.sort((a, b) => a.iterations.at(-1)!.index - b.iterations.at(-1)!.index)[0];
  return idle.sort((a, b) => b.lastEventId - a.lastEventId)[0];
}

/** Two iterations of one Map in states at once: from here on, their rows may be swapped. */
function noteOverlap(lanes: readonly Lane[], lane: Lane, uncertain: Set<string>): void {
  const map = lane.iterations.at(-1)?.map;
  if (map === undefined) return;
  const busy = lanes.filter(
    (other) =>
      other !== lane && !other.ended && other.active !== undefined && other.iterations.at(-1)?.map === map,
  );
  if (busy.length > 0) uncertain.add(map);
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
