import type { HistoryEvent, HistoryEventType } from "@aws-sdk/client-sfn";
import type { EngineEvent } from "./engine.js";
import type { InvocationObserver } from "./lambda-task.js";

/** Payloads are recorded whole: the local cloud never truncates them. */
const WHOLE = { truncated: false };
/** The states AWS records an `…StateAborted` event for when a stop lands while they run. */
const ABORTABLE = new Set(["Task", "Wait", "Map", "Parallel"]);

/** The HistoryEvent fields other than the ones every event has. */
type EventDetails = Omit<HistoryEvent, "id" | "previousEventId" | "timestamp" | "type">;

interface OpenState {
  name: string;
  type: string;
  /** The Map iteration it runs in, if any: state names repeat across iterations. */
  index: number | undefined;
}

/**
 * One execution's history in AWS's HistoryEvent shapes, built from two sources: the engine's event
 * log (states entered and exited, Map iterations) and the Lambda invocations the runner makes for
 * Task states, which the engine does not log. Events are numbered from 1 in the order they are
 * recorded, each pointing at the one recorded before it, as in a linear AWS execution; once the
 * terminal event is in, the history is sealed and a straggler (a Lambda still running when its
 * execution was stopped) is not recorded.
 */
export class ExecutionHistory {
  readonly events: HistoryEvent[] = [];
  private sealed = false;
  private readonly open: OpenState[] = [];
  /** Map and Parallel states that failed and have not been retried: they exit through a Catch. */
  private readonly failed = new Set<string>();
  /** Invocations in flight per Task state, so an engine timeout closes the right one. */
  private readonly invocations = new Map<string, Set<{ closed: boolean }>>();
  /** The Fail state behind the latest failure, if a Fail state (not inside a Map) was. */
  failState: string | undefined;

  constructor(private readonly clock: () => Date) {}

  record(type: HistoryEventType, details: EventDetails = {}): void {
    if (this.sealed) return;
    const id = this.events.length + 1;
    this.events.push({ id, previousEventId: id - 1, timestamp: this.clock(), type, ...details });
  }

  /** Records the terminal event, after an `…StateAborted` for each state a stop interrupted. */
  seal(type: HistoryEventType, details: EventDetails = {}): void {
    if (type === "ExecutionAborted") {
      for (const state of this.open.filter((open) => ABORTABLE.has(open.type)).reverse()) {
        this.record(`${state.type}StateAborted` as HistoryEventType);
      }
    }
    this.record(type, details);
    this.sealed = true;
  }

  /** The observer of one Lambda invocation made for Task state `state`. */
  invocation(state: string, resource: string, timeoutInSeconds: number | undefined): InvocationObserver {
    const invocation = { closed: false };
    const inFlight = this.invocations.get(state) ?? new Set();
    this.invocations.set(state, inFlight);
    inFlight.add(invocation);
    const finish = () => {
      inFlight.delete(invocation);
      const late = invocation.closed;
      invocation.closed = true;
      return late;
    };
    return {
      started: (input) => {
        if (this.sealed) return false;
        this.record("LambdaFunctionScheduled", {
          lambdaFunctionScheduledEventDetails: { resource, input, inputDetails: WHOLE, timeoutInSeconds },
        });
        this.record("LambdaFunctionStarted");
        return true;
      },
      succeeded: (output) => {
        if (finish()) return;
        this.record("LambdaFunctionSucceeded", {
          lambdaFunctionSucceededEventDetails: { output, outputDetails: WHOLE },
        });
      },
      failed: (error, cause) => {
        if (finish()) return;
        this.record("LambdaFunctionFailed", { lambdaFunctionFailedEventDetails: { error, cause } });
      },
    };
  }

  /**
   * Translates one engine event. The engine's execution-level events are not translated: the runner
   * records the start before the engine runs and the end from the engine's result, where a stop's
   * error and cause are known. Retries and catches have no event of their own in AWS either; they
   * show as another invocation and as the state's exit.
   */
  translate(event: EngineEvent): void {
    switch (event.type) {
      case "StateEntered": {
        const { name, type, input } = event.state;
        this.open.push({ name, type, index: event.index });
        this.record(`${type}StateEntered` as HistoryEventType, {
          stateEnteredEventDetails: { name, input: JSON.stringify(input), inputDetails: WHOLE },
        });
        if (type === "Parallel") this.record("ParallelStateStarted");
        return;
      }
      case "StateExited": {
        const { name, type, output } = event.state;
        this.close(name, event.index);
        const key = stateKey(name, event.index);
        if ((type === "Map" || type === "Parallel") && !this.failed.delete(key)) {
          this.record(`${type}StateSucceeded`);
        }
        this.record(`${type}StateExited` as HistoryEventType, {
          stateExitedEventDetails: { name, output: JSON.stringify(output ?? null), outputDetails: WHOLE },
        });
        return;
      }
      case "StateFailed": {
        const { name, type } = event.state;
        this.failState = type === "Fail" && event.index === undefined ? name : undefined;
        if (type === "Map" || type === "Parallel") {
          this.failed.add(stateKey(name, event.index));
          this.record(`${type}StateFailed`);
        } else if (type === "Task" && event.Error === "States.Timeout") {
          this.timedOut(name, event.Cause);
        }
        return;
      }
      case "StateRetried":
        this.failed.delete(stateKey(event.state.name, event.index));
        return;
      case "MapIterationStarted":
        this.record(event.type, { mapIterationStartedEventDetails: iteration(event) });
        return;
      case "MapIterationSucceeded":
        this.record(event.type, { mapIterationSucceededEventDetails: iteration(event) });
        return;
      case "MapIterationFailed":
        this.record(event.type, { mapIterationFailedEventDetails: iteration(event) });
        return;
      default:
        return;
    }
  }

  /** The engine gave up on a Task's invocation: AWS records it as timed out, and nothing after. */
  private timedOut(state: string, cause: unknown): void {
    const oldest = this.invocations.get(state)?.values().next().value;
    if (oldest) {
      oldest.closed = true;
      this.invocations.get(state)?.delete(oldest);
    }
    this.record("LambdaFunctionTimedOut", {
      lambdaFunctionTimedOutEventDetails: {
        error: "States.Timeout",
        cause: typeof cause === "string" ? cause : undefined,
      },
    });
  }

  private close(name: string, index: number | undefined): void {
    const at = this.open.findLastIndex((state) => state.name === name && state.index === index);
    if (at >= 0) this.open.splice(at, 1);
  }
}

const iteration = (event: { parentState: { name: string }; index: number }) => ({
  name: event.parentState.name,
  index: event.index,
});

const stateKey = (name: string, index: number | undefined) => `${name}#${index ?? ""}`;
