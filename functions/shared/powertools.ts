import { Logger } from "@aws-lambda-powertools/logger";
import { injectLambdaContext } from "@aws-lambda-powertools/logger/middleware";
import { Metrics } from "@aws-lambda-powertools/metrics";
import { logMetrics } from "@aws-lambda-powertools/metrics/middleware";
import { parser } from "@aws-lambda-powertools/parser/middleware";
import middy from "@middy/core";
import type { Context } from "aws-lambda";
import type { z } from "zod";

/** Service name and namespace come from POWERTOOLS_SERVICE_NAME / POWERTOOLS_METRICS_NAMESPACE. */
export const logger = new Logger();
export const metrics = new Metrics({ defaultDimensions: {} });

/**
 * The wiring every workflow task shares: structured logs with the Lambda context, metrics flushed
 * per invocation, and the input parsed with the task's zod schema before the logic sees it (a bad
 * input fails the task with a message naming the field, and never reaches the cluster).
 */
export function workflowTask<S extends z.ZodType, R>(
  schema: S,
  logic: (input: z.output<S>, context: Context) => Promise<R>,
) {
  return middy(logic).use(injectLambdaContext(logger)).use(logMetrics(metrics)).use(parser({ schema }));
}
