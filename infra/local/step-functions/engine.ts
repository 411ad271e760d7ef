/**
 * The one door to aws-local-stepfunctions: the polyfill it needs on Node 20 is installed before it
 * can run, and the types it does not export by name are derived here from the ones it does.
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
