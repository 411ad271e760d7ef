import { Logger } from "@aws-lambda-powertools/logger";
import { injectLambdaContext } from "@aws-lambda-powertools/logger/middleware";
import { Metrics, MetricUnit } from "@aws-lambda-powertools/metrics";
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
  return middy(counted).use(injectLambdaContext(logger)).use(logMetrics(metrics)).use(parser({ schema }));
}
