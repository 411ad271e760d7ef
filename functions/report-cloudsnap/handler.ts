import { awsClients } from "../shared/clients.js";
import { publishEvents } from "../shared/event-publisher.js";
import { workflowTask } from "../shared/powertools.js";
import { ReportCloudsnapInput, reportCloudsnap } from "./report.js";

export const handler = workflowTask(ReportCloudsnapInput, (input) => {
  const { events, settings } = awsClients();
  return reportCloudsnap(input, settings.STRATA_CLUSTER_NAME, (entries) =>
    publishEvents(events, settings.STRATA_EVENT_BUS, entries),
  );
});
