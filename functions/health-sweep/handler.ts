import { MetricUnit } from "@aws-lambda-powertools/metrics";
import { z } from "zod";
import { awsClients } from "../shared/clients.js";
import { clusterAccess } from "../shared/cluster.js";
import { publishEvents } from "../shared/event-publisher.js";
import { metrics, workflowTask } from "../shared/powertools.js";
import { sweepOverThePeriod } from "./minute.js";
import { sweepHealth } from "./sweep.js";

/** Started by a schedule: the scheduled event's content does not matter. */
const ScheduledInvocation = z.unknown();

export const handler = workflowTask(ScheduledInvocation, async (_event, context) => {
  const { events, settings } = awsClients();
  const results = await sweepOverThePeriod(
    () =>
      sweepHealth(clusterAccess(), (entries) => publishEvents(events, settings.STRATA_EVENT_BUS, entries)),
    { sweeps: settings.STRATA_SWEEPS_PER_INVOCATION, remainingMs: () => context.getRemainingTimeInMillis() },
  );
  const last = results.at(-1);
  // What the stale-heartbeat alarm watches: offline while it stays above 0, not only when it changed.
  metrics.addMetric("NodesOffline", MetricUnit.Count, last?.offlineNodes.length ?? 0);
  metrics.addMetric("ZonesOffline", MetricUnit.Count, last?.offlineZones.length ?? 0);
  return {
    sweeps: results.length,
    offlineNodes: last?.offlineNodes ?? [],
    offlineZones: last?.offlineZones ?? [],
    events: results.reduce((sum, result) => sum + result.events.length, 0),
  };
});
