import { clusterAccess } from "../shared/cluster.js";
import { workflowTask } from "../shared/powertools.js";
import { CheckNodeInput, checkNode } from "./check.js";

export const handler = workflowTask(CheckNodeInput, (input) => checkNode(input, clusterAccess()));
