/**
 * The one door to aws-local-stepfunctions: the polyfill it needs on Node 20 is installed before it
 * can run, and the types it does not export by name are derived here from the ones it does.
 *
 * What the engine (3.0) does, as read in its source and checked by the tests, where it matters here:
 * - Retry and Catch match `ErrorEquals` against the thrown error's `name` (plus States.ALL, and
 *   States.TaskFailed on Task states); a Catch passes `{ Error: name, Cause: message }` to its
 *   ResultPath. lambda-task.ts builds its errors so that this is AWS's Lambda error shape.
 * - Overrides (Task handlers, Wait durations, Retry pauses) are keyed by state name and reach the
 *   states of Map iterations and Parallel branches too. A Wait override is an exact duration in ms;
 *   a Retry override replaces IntervalSeconds/BackoffRate/MaxDelaySeconds and turns jitter off.
 * - A Task without TimeoutSeconds times out after 60 s (States.Timeout), where AWS would wait for
 *   the Lambda function's own timeout.
 * - A Fail state without Error or Cause fails with "FailStateError" / a stock sentence.
 * - In a Map iteration, `$$.Execution.Input` is the item, not the execution's input.
 * - JSONPath only (no JSONata, no Variables), no task tokens (`.waitForTaskToken`), no
 *   `$$.State` or `$$.Task` in the Context Object, no payload size limits.
 * - Its event log is an async generator; events are queued until read, so it must be read.
 */
import "./promise-with-resolvers.js";
import type { RunOptions, StateMachine } from "aws-local-stepfunctions";

export {
  ExecutionAbortedError,
  ExecutionError,
  ExecutionTimeoutError,
  StateMachine,
} from "aws-local-stepfunctions";

/** A JSON value as the engine passes it between states. */
export type JsonValue = Parameters<StateMachine["run"]>[0];
/** What `run` hands back: the result promise, `abort`, and the event log. */
export type EngineRun = ReturnType<StateMachine["run"]>;
/** One entry of the engine's event log (StateEntered, MapIterationStarted, ExecutionFailed ...). */
export type EngineEvent = EngineRun["eventLogs"] extends AsyncGenerator<infer E> ? E : never;
export type EngineOverrides = NonNullable<RunOptions["overrides"]>;
export type EngineContext = NonNullable<RunOptions["context"]>;
