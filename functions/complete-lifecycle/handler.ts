import { awsClients } from "../shared/clients.js";
import { workflowTask } from "../shared/powertools.js";
import { CompleteLifecycleInput, completeLifecycle } from "./complete.js";

export const handler = workflowTask(CompleteLifecycleInput, (input) =>
  completeLifecycle(input, awsClients().autoScaling),
);
