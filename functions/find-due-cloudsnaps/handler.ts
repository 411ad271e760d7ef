import { bucketCatalogs } from "../shared/cloudsnap-catalogs.js";
import { clusterAccess } from "../shared/cluster.js";
import { workflowTask } from "../shared/powertools.js";
import { FindDueInput, findDueCloudsnaps } from "./find.js";

export const handler = workflowTask(FindDueInput, (input) =>
  findDueCloudsnaps(input, clusterAccess(), bucketCatalogs()),
);
