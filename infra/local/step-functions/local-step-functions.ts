import { randomUUID } from "node:crypto";
import { setTimeout as sleep } from "node:timers/promises";
import type {
  DescribeExecutionInput,
  DescribeExecutionOutput,
  ExecutionListItem,
  ExecutionStatus,
  GetExecutionHistoryInput,
  GetExecutionHistoryOutput,
  HistoryEvent,
  ListExecutionsInput,
  ListExecutionsOutput,
  ListStateMachinesInput,
  ListStateMachinesOutput,
  StartExecutionInput,
  StartExecutionOutput,
  StopExecutionInput,
  StopExecutionOutput,
} from "@aws-sdk/client-sfn";
import { LOCAL_ACCOUNT_ID, localRegion } from "../aws/identity.js";
import { AwsServiceError } from "../aws/service-error.js";
import type { StepFunctionsApi } from "./api.js";
import {
  checkArn,
  checkName,
  decodeToken,
  encodeToken,
  executionArn,
  pageSize,
  type StatesLocation,
  stateMachineArn,
} from "./arns.js";
import { allStates, type StateMachineDefinition, validateDefinition } from "./definitions.js";
import {
  type EngineEvent,
  type EngineOverrides,
  type EngineRun,
  ExecutionAbortedError,
  ExecutionError,
  ExecutionTimeoutError,
  type JsonValue,
  StateMachine,
} from "./engine.js";
import { ExecutionHistory } from "./history.js";
import { invokeLocally, type LocalFunction } from "./lambda-task.js";

/** Closed executions kept for Describe/List/History by default; running ones are always kept. */
const KEPT_CLOSED_EXECUTIONS = 1000;
/** How long a closing execution waits for the engine's event log to drain before it records its end. */
const EVENT_LOG_DRAIN_MS = 1000;

export interface LocalStateMachine {
  name: string;
  /** The ASL definition, substitutions already applied (see definitions.ts). */
  definition: StateMachineDefinition;
}

export interface LocalStepFunctionsOptions {
  stateMachines: readonly LocalStateMachine[];
  /** Lambda function ARN → its handler, run in-process for every Task whose Resource is that ARN. */
  functions: ReadonlyMap<string, LocalFunction>;
  /**
   * Local mode shortens every Wait state to at most this many milliseconds, so poll loops written
   * for minutes in AWS turn in a test or a demo. A Wait whose duration comes from the input or a
   * timestamp waits exactly this long.
   */
  waitTimeCapMs?: number;
  /**
   * Likewise for the pause before a Retry: each retrier waits min(IntervalSeconds, this); backoff
   * and jitter are then not applied (the engine skips them for an overridden interval).
   */
  retryIntervalCapMs?: number;
  clock?: () => Date;
  region?: string;
  /** How many closed executions stay listed and described, oldest forgotten first (default 1000). */
  keptClosedExecutions?: number;
  /** Called when an execution starts and when it closes, for views that follow executions. */
  onExecutionChange?: (execution: DescribeExecutionOutput) => void;
}

/** A Task the runner answers: its Lambda handler, and what the history says about the invocation. */
interface LocalTask {
  resource: string;
  fn: LocalFunction;
  timeoutSeconds: number | undefined;
}

interface Machine {
  name: string;
  arn: string;
  engine: StateMachine;
  tasks: Map<string, LocalTask>;
  waits: Record<string, number>;
  retries: Record<string, number[]>;
  /** Fail states by name, to tell an Error or Cause the definition gave from the engine's default. */
  failStates: Map<string, { Error?: string; ErrorPath?: string; Cause?: string; CausePath?: string }>;
}

interface Execution {
  /** Start order, newest highest: ListExecutions' order and cursor. */
  seq: number;
  arn: string;
  name: string;
  machine: Machine;
  input: string;
  startDate: Date;
  status: ExecutionStatus;
  stopDate?: Date;
  output?: string;
  error?: string;
  cause?: string;
  history: ExecutionHistory;
  abort: () => void;
  settled: Promise<void>;
  stop?: { error: string | undefined; cause: string | undefined };
}

/**
 * Step Functions for the local cloud: the project's own ASL files run in aws-local-stepfunctions
 * with the Lambda handlers in-process, behind the same calls (and refusals) as the AWS API, so the
 * CLI and the functions that start or watch workflows cannot tell it from the real service.
 * Executions live in memory; an execution never throws out of its runner, whatever its tasks do: it
 * ends SUCCEEDED, FAILED, TIMED_OUT or ABORTED with its error and cause.
 */
export class LocalStepFunctions implements StepFunctionsApi {
  private readonly machines = new Map<string, Machine>();
  private readonly executions = new Map<string, Execution>();
  private readonly closedOrder: string[] = [];
  private readonly location: StatesLocation;
  private readonly clock: () => Date;
  private seq = 0;
  private closing = false;
  /** The machines were all created with the runner: their creation date. */
  private readonly createdAt: Date;

  constructor(private readonly options: LocalStepFunctionsOptions) {
    this.location = { region: options.region ?? localRegion(), account: LOCAL_ACCOUNT_ID };
    this.clock = options.clock ?? (() => new Date());
    this.createdAt = this.clock();
    for (const { name, definition } of options.stateMachines) {
      checkName(name);
      const arn = stateMachineArn(this.location, name);
      if (this.machines.has(arn)) throw new Error(`state machine "${name}" is defined twice`);
      this.machines.set(arn, this.prepare(name, arn, definition));
    }
  }

  /**
   * Checks a definition and works out what its runs need: the handler of every Task (a Resource
   * that is no known function is refused now, not when an execution reaches it) and the Wait and
   * Retry overrides, which the engine keys by state name (unique across the machine, nested ones
   * included).
   */
  private prepare(name: string, arn: string, definition: StateMachineDefinition): Machine {
    let engine: StateMachine;
    try {
      validateDefinition(definition);
      // The engine checks the rest of the language (paths, fields, ARNs) with asl-validator.
      engine = new StateMachine(definition);
    } catch (error) {
      throw new Error(`state machine "${name}": ${(error as Error).message}`);
    }
    const machine: Machine = {
      name,
      arn,
      engine,
      tasks: new Map(),
      waits: {},
      retries: {},
      failStates: new Map(),
    };
    const { waitTimeCapMs, retryIntervalCapMs } = this.options;
    for (const { name: stateName, state } of allStates(definition)) {
      if (state.Type === "Task") {
        const fn = this.options.functions.get(state.Resource);
        if (!fn)
          throw new Error(
            `state machine "${name}": Task "${stateName}" calls ${state.Resource}, which is no local function`,
          );
        machine.tasks.set(stateName, { resource: state.Resource, fn, timeoutSeconds: state.TimeoutSeconds });
      }
      if (state.Type === "Wait" && waitTimeCapMs !== undefined) {
        const ms = state.Seconds !== undefined ? state.Seconds * 1000 : waitTimeCapMs;
        machine.waits[stateName] = Math.min(ms, waitTimeCapMs);
      }
      const retriers = "Retry" in state ? state.Retry : undefined;
      if (retriers && retryIntervalCapMs !== undefined) {
        machine.retries[stateName] = retriers.map((retrier) =>
          Math.min((retrier.IntervalSeconds ?? 1) * 1000, retryIntervalCapMs),
        );
      }
      if (state.Type === "Fail") machine.failStates.set(stateName, state);
    }
    return machine;
  }

  /** The ARN of state machine `name`, as StartExecution and ListExecutions take it. */
  stateMachineArn(name: string): string {
    return stateMachineArn(this.location, name);
  }

  async startExecution(input: StartExecutionInput): Promise<StartExecutionOutput> {
    const machine = this.machine(input.stateMachineArn);
    const name = checkName(input.name ?? randomUUID());
    const text = input.input ?? "{}";
    let parsed: JsonValue;
    try {
      parsed = JSON.parse(text) as JsonValue;
    } catch (error) {
      throw new AwsServiceError(
        "InvalidExecutionInput",
        `Invalid execution input: ${(error as Error).message}`,
      );
    }
    const arn = executionArn(this.location, machine.name, name);
    const existing = this.executions.get(arn);
    if (existing) {
      // Standard workflows: the same name and input while it runs is the same request again.
      if (existing.status === "RUNNING" && existing.input === text)
        return { executionArn: arn, startDate: existing.startDate };
      throw new AwsServiceError("ExecutionAlreadyExists", `Execution Already Exists: '${arn}'`);
    }
    if (this.closing)
      throw new AwsServiceError("ServiceUnavailable", "the local cloud is shutting down", 503);
    const execution = this.run(machine, name, arn, text, parsed);
    return { executionArn: arn, startDate: execution.startDate };
  }

  async describeExecution(input: DescribeExecutionInput): Promise<DescribeExecutionOutput> {
    return describe(this.execution(input.executionArn));
  }

  async listStateMachines(input: ListStateMachinesInput): Promise<ListStateMachinesOutput> {
    const size = pageSize(input.maxResults);
    const scope = "state machines";
    const from = decodeToken(input.nextToken, scope) ?? 0;
    const all = [...this.machines.values()].sort((a, b) => a.name.localeCompare(b.name));
    const page = all.slice(from, from + size);
    return {
      stateMachines: page.map(({ arn, name }) => ({
        stateMachineArn: arn,
        name,
        type: "STANDARD",
        creationDate: this.createdAt,
      })),
      nextToken: from + size < all.length ? encodeToken(scope, from + size) : undefined,
    };
  }

  async listExecutions(input: ListExecutionsInput): Promise<ListExecutionsOutput> {
    if (input.stateMachineArn === undefined)
      throw new AwsServiceError(
        "ValidationException",
        "stateMachineArn is required (Map Runs are not run locally)",
      );
    const machine = this.machine(input.stateMachineArn);
    const size = pageSize(input.maxResults);
    const scope = `${machine.arn}|${input.statusFilter ?? ""}`;
    const before = decodeToken(input.nextToken, scope) ?? Number.POSITIVE_INFINITY;
    const matching = [...this.executions.values()]
      .filter((execution) => execution.machine === machine && execution.seq < before)
      .filter((execution) => !input.statusFilter || execution.status === input.statusFilter)
      .sort((a, b) => b.seq - a.seq);
    const page = matching.slice(0, size);
    const last = page.at(-1);
    return {
      executions: page.map(listItem),
      nextToken: matching.length > size && last ? encodeToken(scope, last.seq) : undefined,
    };
  }

  async getExecutionHistory(input: GetExecutionHistoryInput): Promise<GetExecutionHistoryOutput> {
    const execution = this.execution(input.executionArn);
    const size = pageSize(input.maxResults);
    const reverse = input.reverseOrder === true;
    const scope = `${execution.arn}|${reverse}`;
    const events = execution.history.events;
    const from = decodeToken(input.nextToken, scope) ?? (reverse ? events.length : 1);
    const ids = reverse ? { first: from, step: -1 } : { first: from, step: 1 };
    const page: HistoryEvent[] = [];
    let id = ids.first;
    while (page.length < size && id >= 1 && id <= events.length) {
      page.push(events[id - 1]!);
      id += ids.step;
    }
    const more = id >= 1 && id <= events.length;
    const withData = input.includeExecutionData !== false;
    return {
      events: page.map((event) => (withData ? structuredClone(event) : withoutData(event))),
      nextToken: more ? encodeToken(scope, id) : undefined,
    };
  }

  async stopExecution(input: StopExecutionInput): Promise<StopExecutionOutput> {
    const execution = this.execution(input.executionArn);
    if (execution.status === "RUNNING") {
      execution.stop ??= { error: input.error, cause: input.cause };
      execution.abort();
      await execution.settled;
    }
    // Stopping a closed execution changes nothing; AWS answers with its stop date too.
    return { stopDate: execution.stopDate };
  }

  /** Aborts every running execution and waits for each to be recorded ABORTED. */
  async close(): Promise<void> {
    this.closing = true;
    const running = [...this.executions.values()].filter((execution) => execution.status === "RUNNING");
    await Promise.all(
      running.map((execution) =>
        this.stopExecution({ executionArn: execution.arn, error: "Strata.LocalCloudClosed" }),
      ),
    );
  }

  private run(machine: Machine, name: string, arn: string, text: string, input: JsonValue): Execution {
    const startDate = this.clock();
    const history = new ExecutionHistory(this.clock);
    history.record("ExecutionStarted", {
      executionStartedEventDetails: { input: text, inputDetails: { truncated: false } },
    });
    const execution: Execution = {
      seq: ++this.seq,
      arn,
      name,
      machine,
      input: text,
      startDate,
      status: "RUNNING",
      history,
      abort: () => {},
      settled: Promise.resolve(),
    };
    this.executions.set(arn, execution);

    let engineRun: EngineRun;
    try {
      engineRun = machine.engine.run(input, {
        overrides: this.overrides(machine, history),
        context: {
          Execution: { Id: arn, Name: name, StartTime: startDate.toISOString() },
          StateMachine: { Id: machine.arn, Name: machine.name },
        },
      });
    } catch (error) {
      this.finish(execution, { error });
      return execution;
    }
    execution.abort = engineRun.abort;
    const drained = follow(engineRun.eventLogs, history);
    execution.settled = engineRun.result
      .then(
        (output) => ({ output }),
        (error: unknown) => ({ error }),
      )
      .then(async (outcome) => {
        // The engine closes its log as it settles; what is still queued precedes the end.
        await Promise.race([drained, sleep(EVENT_LOG_DRAIN_MS, undefined, { ref: false })]);
        this.finish(execution, outcome);
      });
    this.changed(execution);
    return execution;
  }

  /** The engine overrides of one execution: its Task handlers, observed by its history. */
  private overrides(machine: Machine, history: ExecutionHistory): EngineOverrides {
    const taskResourceLocalHandlers = Object.fromEntries(
      [...machine.tasks].map(([stateName, task]) => [
        stateName,
        (input: JsonValue) =>
          invokeLocally(task.fn, input, history.invocation(stateName, task.resource, task.timeoutSeconds)),
      ]),
    );
    return {
      taskResourceLocalHandlers,
      waitTimeOverrides: machine.waits,
      retryIntervalOverrides: machine.retries,
    };
  }

  /** Records how an execution ended: its status, output or error and cause, and the terminal event. */
  private finish(execution: Execution, outcome: { output?: JsonValue; error?: unknown }): void {
    if (execution.status !== "RUNNING") return;
    const { history } = execution;
    // The outcome decides, not the stop request: a stop that lands as the execution ends is too late.
    if (outcome.error instanceof ExecutionAbortedError) {
      execution.status = "ABORTED";
      execution.error = execution.stop?.error;
      execution.cause = execution.stop?.cause;
      history.seal("ExecutionAborted", {
        executionAbortedEventDetails: { error: execution.error, cause: execution.cause },
      });
    } else if (outcome.error === undefined) {
      execution.status = "SUCCEEDED";
      execution.output = JSON.stringify(outcome.output ?? null);
      history.seal("ExecutionSucceeded", {
        executionSucceededEventDetails: { output: execution.output, outputDetails: { truncated: false } },
      });
    } else if (outcome.error instanceof ExecutionTimeoutError) {
      execution.status = "TIMED_OUT";
      execution.error = "States.Timeout";
      history.seal("ExecutionTimedOut", { executionTimedOutEventDetails: { error: execution.error } });
    } else {
      execution.status = "FAILED";
      Object.assign(execution, failure(outcome.error, execution.machine, history.failState));
      history.seal("ExecutionFailed", {
        executionFailedEventDetails: { error: execution.error, cause: execution.cause },
      });
    }
    execution.stopDate = this.clock();
    this.closedOrder.push(execution.arn);
    while (this.closedOrder.length > (this.options.keptClosedExecutions ?? KEPT_CLOSED_EXECUTIONS)) {
      this.executions.delete(this.closedOrder.shift()!);
    }
    this.changed(execution);
  }

  private changed(execution: Execution): void {
    try {
      this.options.onExecutionChange?.(describe(execution));
    } catch {
      // A view that fails to follow must not fail the execution it follows.
    }
  }

  private machine(arn: string | undefined): Machine {
    const machine = this.machines.get(checkArn(arn, "stateMachine"));
    if (!machine)
      throw new AwsServiceError("StateMachineDoesNotExist", `State Machine Does Not Exist: '${arn}'`);
    return machine;
  }

  private execution(arn: string | undefined): Execution {
    const execution = this.executions.get(checkArn(arn, "execution"));
    if (!execution) throw new AwsServiceError("ExecutionDoesNotExist", `Execution Does Not Exist: '${arn}'`);
    return execution;
  }
}

/** Reads the engine's event log into the history until the engine closes it. */
async function follow(events: AsyncGenerator<EngineEvent>, history: ExecutionHistory): Promise<void> {
  try {
    for await (const event of events) history.translate(event);
  } catch {
    // The log is a record, not the outcome: the result promise says how the execution ended.
  }
}

/**
 * The error and cause of a failed execution. The engine reports a failing state's error as an
 * ExecutionError whose cause is the state's error: its name is the ASL error name and its message the
 * cause (for a Lambda, the runtime's payload as JSON). A Fail state without Error or Cause gets the
 * engine's placeholders, which AWS does not have, so they are dropped.
 */
function failure(
  thrown: unknown,
  machine: Machine,
  failState: string | undefined,
): { error: string | undefined; cause: string | undefined } {
  const inner = thrown instanceof ExecutionError ? thrown.cause : thrown;
  if (!(inner instanceof Error)) return { error: "States.Runtime", cause: String(inner) };
  const fail = failState === undefined ? undefined : machine.failStates.get(failState);
  if (fail) {
    return {
      error: fail.Error !== undefined || fail.ErrorPath !== undefined ? inner.name : undefined,
      cause: fail.Cause !== undefined || fail.CausePath !== undefined ? inner.message : undefined,
    };
  }
  return { error: inner.name, cause: inner.message };
}

function listItem(execution: Execution): ExecutionListItem {
  return {
    executionArn: execution.arn,
    stateMachineArn: execution.machine.arn,
    name: execution.name,
    status: execution.status,
    startDate: execution.startDate,
    stopDate: execution.stopDate,
  };
}

function describe(execution: Execution): DescribeExecutionOutput {
  return {
    ...listItem(execution),
    input: execution.input,
    inputDetails: { included: true },
    output: execution.output,
    outputDetails: execution.output === undefined ? undefined : { included: true },
    error: execution.error,
    cause: execution.cause,
  };
}

/** A history event without its payloads, for includeExecutionData: false. */
function withoutData(event: HistoryEvent): HistoryEvent {
  const copy = structuredClone(event);
  for (const value of Object.values(copy)) {
    if (value !== null && typeof value === "object" && !(value instanceof Date)) {
      delete value.input;
      delete value.output;
    }
  }
  return copy;
}
