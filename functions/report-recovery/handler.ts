import { awsClients } from "../shared/clients.js";
import { publishEvents } from "../shared/event-publisher.js";
import { workflowTask } from "../shared/powertools.js";
import { ReportRecoveryInput, reportRecovery } from "./report.js";

export const handler = workflowTask(ReportRecoveryInput, (input) => {
  const { events, settings } = awsClients();
  return reportRecovery(input, settings.STRATA_CLUSTER_NAME, (entries) =>
    publishEvents(events, settings.STRATA_EVENT_BUS, entries),
  );
});
