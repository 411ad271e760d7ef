import { IdempotencyConfig } from "@aws-lambda-powertools/idempotency";
import { makeHandlerIdempotent } from "@aws-lambda-powertools/idempotency/middleware";
import { injectLambdaContext } from "@aws-lambda-powertools/logger/middleware";
import { MetricUnit } from "@aws-lambda-powertools/metrics";
import { logMetrics } from "@aws-lambda-powertools/metrics/middleware";
import { parser } from "@aws-lambda-powertools/parser/middleware";
import middy from "@middy/core";
import { awsClients } from "../shared/clients.js";
import { idempotencyRecords } from "../shared/idempotency.js";
import { logger, metrics, refuseInput } from "../shared/powertools.js";
import { IntakeEvent } from "./aws-events.js";
import { intakeDependencies } from "./dependencies.js";
import { takeIn } from "./intake.js";

const outcomeMetric = {
  started: "WorkflowsStarted",
  duplicate: "DuplicateEvents",
  ignored: "EventsIgnored",
} as const;

/**
 * EventBridge delivers at least once: a redelivered event (same id) is answered from the
 * idempotency record instead of being looked at again.
 */
export const handler = middy(async (event: IntakeEvent) => {
  const outcome = await takeIn(event, intakeDependencies(awsClients()));
  metrics.addMetric(outcomeMetric[outcome.action], MetricUnit.Count, 1);
  return outcome;
})
  .use(injectLambdaContext(logger))
  .use(logMetrics(metrics))
  .use(parser({ schema: IntakeEvent, errorHandler: refuseInput }))
  .use(
    makeHandlerIdempotent({
      persistenceStore: idempotencyRecords("event-intake"),
      config: new IdempotencyConfig({ eventKeyJmesPath: "id" }),
    }),
  );
