import { awsClients } from "../shared/clients.js";
import { workflowTask } from "../shared/powertools.js";
import { MoveDrivesInput, moveDrives } from "./move.js";

export const handler = workflowTask(MoveDrivesInput, (input) => {
  const { ec2, settings, store } = awsClients();
  return moveDrives(input, { ec2, clusterName: settings.STRATA_CLUSTER_NAME, leases: store.leases });
});
