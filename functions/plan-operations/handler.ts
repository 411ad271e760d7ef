import { clusterAccess } from "../shared/cluster.js";
import { workflowTask } from "../shared/powertools.js";
import { PlanOperationsInput, planOperations } from "./plan.js";

export const handler = workflowTask(PlanOperationsInput, (input) => planOperations(input, clusterAccess()));
