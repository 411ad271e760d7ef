import { randomUUID } from "node:crypto";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import type { Context } from "aws-lambda";
import { type StrataFunction, strataFunctions } from "../../workflows.js";
import { LOCAL_ACCOUNT_ID, localRegion } from "../aws/identity.js";
import type { LocalFunction } from "../step-functions/lambda-task.js";

/** What Lambda gives a Strata function by default; local invocations get the same budget. */
const FUNCTION_TIMEOUT_MS = 60_000;

export interface LocalFunctions {
  /** Function ARN → handler, for the Step Functions runner. */
  byArn: Map<string, LocalFunction>;
  /** The ARN of each function, for the ASL files' substitutions (`${FenceNodeFunctionArn}` …). */
  substitutions: Record<string, string>;
  invoke(name: string, event: unknown): Promise<unknown>;
}

export const localFunctionArn = (name: string, env: NodeJS.ProcessEnv = process.env) =>
  `arn:aws:lambda:${localRegion(env)}:${LOCAL_ACCOUNT_ID}:function:strata-${name}`;

type Handler = (event: unknown, context: Context) => Promise<unknown>;

/**
 * Loads every Lambda from its bundle (dist/functions/<name>.mjs, the same handler the CDK app
 * deploys) into this process and calls it the way Lambda does: the event, and a context with the
 * function's name, a request id and the time left. The functions read their settings from this
 * process's environment, which the local cloud has set as the CDK app sets each Lambda's.
 */
export async function loadLocalFunctions(bundleDir: string): Promise<LocalFunctions> {
  const handlers = new Map<string, Handler>();
  for (const fn of strataFunctions) {
    // Powertools names the service from the environment when the module is loaded.
    process.env.POWERTOOLS_SERVICE_NAME = `strata-${fn.name}`;
    const module = (await import(pathToFileURL(join(bundleDir, `${fn.name}.mjs`)).href)) as {
      handler?: unknown;
    };
    if (typeof module.handler !== "function")
      throw new Error(`dist/functions/${fn.name}.mjs exports no handler`);
    handlers.set(fn.name, module.handler as Handler);
  }
  delete process.env.POWERTOOLS_SERVICE_NAME;
  const invoke = (name: string, event: unknown) => {
    const handler = handlers.get(name);
    if (handler === undefined) throw new Error(`no Strata function named ${name}`);
    return handler(event, lambdaContext(name));
  };
  return {
    byArn: new Map(
      strataFunctions.map((fn) => [localFunctionArn(fn.name), (event) => invoke(fn.name, event)]),
    ),
    substitutions: Object.fromEntries(
      strataFunctions.map((fn: StrataFunction) => [fn.substitution, localFunctionArn(fn.name)]),
    ),
    invoke,
  };
}

function lambdaContext(name: string): Context {
  const deadline = Date.now() + FUNCTION_TIMEOUT_MS;
  const functionName = `strata-${name}`;
  return {
    callbackWaitsForEmptyEventLoop: false,
    functionName,
    functionVersion: "$LATEST",
    invokedFunctionArn: localFunctionArn(name),
    memoryLimitInMB: "256",
    awsRequestId: randomUUID(),
    logGroupName: `/aws/lambda/${functionName}`,
    logStreamName: "local",
    getRemainingTimeInMillis: () => Math.max(0, deadline - Date.now()),
    done: () => {},
    fail: () => {},
    succeed: () => {},
  };
}
