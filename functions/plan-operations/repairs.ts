import { z } from "zod";
import type { ClusterAccess } from "../shared/cluster.js";
import { liveNodes } from "../shared/nodes.js";
import { requestToken } from "../shared/request-tokens.js";
import type { OperationPlan } from "./planned.js";
import { noRunnerReason, runnerFor } from "./runner.js";

export const PlanRepairsInput = z.object({
  purpose: z.literal("repair"),
  /** The workflow execution's name: the request tokens derive from it. */
  execution: z.string().min(1),
  /** The nodes whose replicas were lost (one for node-loss, a zone's offline ones for az-failure). */
  lostNodes: z.array(z.string().min(1)),
});
export type PlanRepairsInput = z.infer<typeof PlanRepairsInput>;

/**
 * A repair (back to the replication factor, lost replicas replaced) of every volume with a replica
 * on a lost node, run where runnerFor says.
 */
export async function planRepairs(input: PlanRepairsInput, cluster: ClusterAccess): Promise<OperationPlan> {
  const [volumes, nodes] = await Promise.all([cluster.store.volumes.list(), cluster.store.nodes.list()]);
  const lost = new Set(input.lostNodes);
  const alive = liveNodes(nodes, cluster.liveness(), lost);
  const plan: OperationPlan = { operations: [], unplanned: [], how: "re-replicated" };
  for (const volume of volumes) {
    if (!volume.replicas.some((replica) => lost.has(replica.node))) continue;
    const node = runnerFor(volume, alive);
    if (node === undefined) {
      plan.unplanned.push({ volume: volume.name, reason: noRunnerReason(volume, nodes, lost) });
      continue;
    }
    plan.operations.push({
      kind: "repair",
      volume: volume.name,
      node,
      requestToken: requestToken(input.execution, "repair", volume.name),
      params: {},
    });
  }
  return plan;
}
