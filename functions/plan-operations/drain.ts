import { z } from "zod";
import type { ClusterAccess } from "../shared/cluster.js";
import { planMoves } from "./moves.js";
import type { OperationPlan } from "./planned.js";

export const PlanDrainInput = z.object({
  purpose: z.literal("drain"),
  execution: z.string().min(1),
  /** The node Auto Scaling is scaling in: it still serves, and its replicas leave it first. */
  nodeId: z.string().min(1),
});
export type PlanDrainInput = z.infer<typeof PlanDrainInput>;

/**
 * Before a node that is scaled in is fenced: each of its live replicas moved to another node, placed
 * like a repair's new replica, while the node still serves them, so no volume is ever a replica
 * short and nothing waits for a replacement that will not come.
 */
export async function planDrain(input: PlanDrainInput, cluster: ClusterAccess): Promise<OperationPlan> {
  const moves = await planMoves(cluster, {
    execution: input.execution,
    targets: (node) => node.id !== input.nodeId,
    noRoom: `no room for a replica off ${input.nodeId}`,
    leaving: (volume) =>
      volume.replicas.find((replica) => replica.node === input.nodeId && replica.state !== "failed"),
  });
  return { ...moves, how: "drained" };
}
