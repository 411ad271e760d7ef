import { Logger } from "@aws-lambda-powertools/logger";
import { injectLambdaContext } from "@aws-lambda-powertools/logger/middleware";
import { Metrics, MetricUnit } from "@aws-lambda-powertools/metrics";
import { logMetrics } from "@aws-lambda-powertools/metrics/middleware";
import type { ParseError } from "@aws-lambda-powertools/parser";
import { parser } from "@aws-lambda-powertools/parser/middleware";
import middy from "@middy/core";
import type { Context } from "aws-lambda";
import type { z } from "zod";
import { RefusedError } from "./errors.js";

/** Service name and namespace come from POWERTOOLS_SERVICE_NAME / POWERTOOLS_METRICS_NAMESPACE. */
export const logger = new Logger();
/** Its own warnings (no metric to publish: a duplicate answered from the idempotency store) go to the structured log. */
export const metrics = new Metrics({ defaultDimensions: {}, logger });

/**
 * The wiring every workflow task shares: structured logs with the Lambda context, metrics flushed
 * per invocation, and the input parsed with the task's zod schema before the logic sees it (a bad
 * input fails the task with a message naming the field, and never reaches the cluster).
 */
export function workflowTask<S extends z.ZodType, R>(
  schema: S,
  logic: (input: z.output<S>, context: Context) => Promise<R>,
) {
  const counted = async (input: z.output<S>, context: Context) => {
    // Per function (the service dimension): tasks completed and failed, by the error's name.
    try {
      const result = await logic(input, context);
      metrics.addMetric("TasksCompleted", MetricUnit.Count, 1);
      return result;
    } catch (error) {
      metrics.addDimension("error", error instanceof Error ? error.name : "unknown");
      metrics.addMetric("TasksFailed", MetricUnit.Count, 1);
      throw error;
    }
  };
  return middy(counted)
    .use(injectLambdaContext(logger))
    .use(logMetrics(metrics))
    .use(parser({ schema, errorHandler: refuseInput }));
}

/** A Standard Schema issue, as the parser's ParseError carries them in its cause. */
interface SchemaIssue {
  message: string;
  path?: readonly (PropertyKey | { key: PropertyKey })[];
}

/**
 * The parser's own error says only "Failed to parse schema"; its cause holds the issues. An input
 * that fails its schema can never succeed, so it is refused (no retry), naming each field and what
 * is wrong with it, e.g. `invalid input: reason: Invalid input: expected string, received undefined`.
 */
export function refuseInput(error: ParseError): never {
  const issues: SchemaIssue[] = Array.isArray(error.cause) ? error.cause : [];
  const described = issues.map((issue) => {
    const path = (issue.path ?? []).map((part) => String(typeof part === "object" ? part.key : part));
    return `${path.length > 0 ? path.join(".") : "(the input)"}: ${issue.message}`;
  });
  metrics.addMetric("InputsRefused", MetricUnit.Count, 1);
  throw new RefusedError(`invalid input: ${described.length > 0 ? described.join("; ") : error.message}`);
}
