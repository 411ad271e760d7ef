import { bucketCatalogs } from "../shared/cloudsnap-catalogs.js";
import { clusterAccess } from "../shared/cluster.js";
import { workflowTask } from "../shared/powertools.js";
import { CheckRestoreInput, checkRestore } from "./check.js";

export const handler = workflowTask(CheckRestoreInput, (input) =>
  checkRestore(input, clusterAccess(), bucketCatalogs()),
);
