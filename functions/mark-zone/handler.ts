import { clusterAccess } from "../shared/cluster.js";
import { workflowTask } from "../shared/powertools.js";
import { MarkZoneInput, markZone } from "./mark.js";

export const handler = workflowTask(MarkZoneInput, (input) => markZone(input, clusterAccess()));
