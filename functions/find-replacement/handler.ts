import { awsClients } from "../shared/clients.js";
import { workflowTask } from "../shared/powertools.js";
import { FindReplacementInput, findReplacement } from "./find.js";

export const handler = workflowTask(FindReplacementInput, (input) => findReplacement(input, awsClients()));
