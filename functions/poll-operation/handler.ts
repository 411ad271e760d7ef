import { clusterAccess } from "../shared/cluster.js";
import { workflowTask } from "../shared/powertools.js";
import { PollOperationInput, pollOperation } from "./poll.js";

export const handler = workflowTask(PollOperationInput, (input) => pollOperation(input, clusterAccess()));
