import { bucketCatalogs } from "../shared/cloudsnap-catalogs.js";
import { clusterAccess } from "../shared/cluster.js";
import { workflowTask } from "../shared/powertools.js";
import { ApplyRetentionInput, applyRetention } from "./apply.js";

export const handler = workflowTask(ApplyRetentionInput, (input) =>
  applyRetention(input, clusterAccess(), bucketCatalogs()),
);
