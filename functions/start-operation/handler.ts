import { clusterAccess } from "../shared/cluster.js";
import { workflowTask } from "../shared/powertools.js";
import { StartOperationInput, startOperation } from "./start.js";

export const handler = workflowTask(StartOperationInput, (input) => startOperation(input, clusterAccess()));
