import { awsClients } from "../shared/clients.js";
import { workflowTask } from "../shared/powertools.js";
import { FindReplacementInput, findReplacement } from "./find.js";

export const handler = workflowTask(FindReplacementInput, (input) => {
  const { ec2, eks, store } = awsClients();
  return findReplacement(input, { ec2, eks, leases: store.leases });
});
