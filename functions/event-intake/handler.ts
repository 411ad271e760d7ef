import { IdempotencyConfig } from "@aws-lambda-powertools/idempotency";
import { makeHandlerIdempotent } from "@aws-lambda-powertools/idempotency/middleware";
import { injectLambdaContext } from "@aws-lambda-powertools/logger/middleware";
import { logMetrics } from "@aws-lambda-powertools/metrics/middleware";
import { parser } from "@aws-lambda-powertools/parser/middleware";
import middy from "@middy/core";
import { awsClients } from "../shared/clients.js";
import { idempotencyRecords } from "../shared/idempotency.js";
import { logger, metrics, refuseInput } from "../shared/powertools.js";
import { IntakeEvent } from "./aws-events.js";
import { intakeDependencies } from "./dependencies.js";
import { takeIn } from "./intake.js";

/**
 * EventBridge delivers at least once: a redelivered event (same id) is answered from the
 * idempotency record instead of being looked at again.
 */
export const handler = middy(async (event: IntakeEvent) => takeIn(event, intakeDependencies(awsClients())))
  .use(injectLambdaContext(logger))
  .use(logMetrics(metrics))
  .use(parser({ schema: IntakeEvent, errorHandler: refuseInput }))
  .use(
    makeHandlerIdempotent({
      persistenceStore: idempotencyRecords("event-intake"),
      config: new IdempotencyConfig({ eventKeyJmesPath: "id" }),
    }),
  );
