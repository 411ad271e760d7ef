import type { JsonValue } from "./engine.js";

/** An in-process Lambda handler: the event in, the result out, or a throw, as the function would. */
export type LocalFunction = (event: unknown) => Promise<unknown>;

/** What the execution history is told about one invocation, in the order AWS records it. */
export interface InvocationObserver {
  /** False once the execution has closed (a stop landed): the function is then not invoked. */
  started(input: string): boolean;
  succeeded(output: string): void;
  failed(error: string, cause: string): void;
}

/** The error payload AWS Lambda's Node.js runtime returns for a handler that throws. */
export interface LambdaErrorPayload {
  errorMessage: string;
  errorType: string;
  trace: string[];
}

/**
 * A failed invocation as Step Functions sees one from a Task whose Resource is a Lambda ARN: the
 * error name is the function's errorType, so `ErrorEquals: ["Strata.Transient"]` matches a thrown
 * error named so, and the message is the cause AWS records, the runtime's error payload as JSON. The
 * engine's Catch hands `{ Error: name, Cause: message }` on, which is then AWS's shape exactly.
 */
export class LambdaFunctionError extends Error {
  constructor(errorType: string, cause: string) {
    super(cause);
    this.name = errorType;
  }
}

/** What the Lambda runtime makes of a thrown value. */
export function lambdaErrorPayload(thrown: unknown): LambdaErrorPayload {
  if (thrown instanceof Error) {
    return {
      errorMessage: thrown.message,
      errorType: thrown.name,
      trace: thrown.stack?.split("\n") ?? [],
    };
  }
  return { errorMessage: String(thrown), errorType: typeof thrown, trace: [] };
}

/**
 * Invokes `fn` the way Step Functions invokes a Lambda function: the input crosses as JSON (the
 * handler gets its own copy), the result comes back as JSON (`undefined` becomes null), and a throw
 * becomes a LambdaFunctionError.
 *
 * The engine logs StateEntered just before it calls the task, but its event log is read
 * asynchronously; yielding one macrotask first lets the reader record the entry before this records
 * the invocation, so the history reads in AWS's order.
 */
export async function invokeLocally(
  fn: LocalFunction,
  input: JsonValue,
  observer: InvocationObserver,
): Promise<JsonValue> {
  await new Promise<void>((resolve) => setImmediate(resolve));
  const payload = JSON.stringify(input ?? null);
  if (!observer.started(payload)) throw new LambdaFunctionError("States.Runtime", "the execution has closed");
  let output: string;
  try {
    output = JSON.stringify((await fn(JSON.parse(payload))) ?? null);
  } catch (thrown) {
    const error = lambdaErrorPayload(thrown);
    const cause = JSON.stringify(error);
    observer.failed(error.errorType, cause);
    throw new LambdaFunctionError(error.errorType, cause);
  }
  observer.succeeded(output);
  return JSON.parse(output) as JsonValue;
}
