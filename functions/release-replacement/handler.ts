import { awsClients } from "../shared/clients.js";
import { workflowTask } from "../shared/powertools.js";
import { ReleaseReplacementInput, releaseReplacementInstance } from "./release.js";

export const handler = workflowTask(ReleaseReplacementInput, (input) => {
  const { ec2, settings, store } = awsClients();
  return releaseReplacementInstance(input, {
    ec2,
    clusterName: settings.STRATA_CLUSTER_NAME,
    leases: store.leases,
  });
});
