import { z } from "zod";
import { awsClients } from "../shared/clients.js";
import { clusterAccess } from "../shared/cluster.js";
import { publishEvents } from "../shared/event-publisher.js";
import { workflowTask } from "../shared/powertools.js";
import { sweepHealth } from "./sweep.js";

/** Started by a schedule: the scheduled event's content does not matter. */
const ScheduledInvocation = z.unknown();

export const handler = workflowTask(ScheduledInvocation, async () => {
  const { events, settings } = awsClients();
  const result = await sweepHealth(clusterAccess(), (entries) =>
    publishEvents(events, settings.STRATA_EVENT_BUS, entries),
  );
  return {
    offlineNodes: result.offlineNodes,
    offlineZones: result.offlineZones,
    events: result.events.length,
  };
});
