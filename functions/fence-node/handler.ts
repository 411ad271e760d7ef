import { clusterAccess } from "../shared/cluster.js";
import { workflowTask } from "../shared/powertools.js";
import { FenceNodeInput, fenceLostNode } from "./fence.js";

export const handler = workflowTask(FenceNodeInput, (input) => fenceLostNode(input, clusterAccess()));
