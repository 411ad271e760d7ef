import { z } from "zod";
import type { ClusterAccess } from "../shared/cluster.js";
import { liveNodes } from "../shared/nodes.js";
import { requestToken } from "../shared/request-tokens.js";
import type { OperationPlan } from "./planned.js";
import { noRunnerReason, runnerFor } from "./runner.js";

export const PlanResyncsInput = z.object({
  purpose: z.literal("resync"),
  execution: z.string().min(1),
  /** The node that came back with its drives. */
  nodeId: z.string().min(1),
});
export type PlanResyncsInput = z.infer<typeof PlanResyncsInput>;

/**
 * After a lost node's drives moved to its replacement and its agent is back: a resync of each of
 * its replicas that were failed while it was away, which copies only the regions written since
 * (DESIGN.md, Drive sets). A replica still in sync missed nothing and needs none.
 */
export async function planResyncs(input: PlanResyncsInput, cluster: ClusterAccess): Promise<OperationPlan> {
  const [volumes, nodes] = await Promise.all([cluster.store.volumes.list(), cluster.store.nodes.list()]);
  const alive = liveNodes(nodes, cluster.liveness());
  const plan: OperationPlan = { operations: [], unplanned: [], how: "resynced" };
  for (const volume of volumes) {
    const returning = volume.replicas.find(
      (replica) => replica.node === input.nodeId && replica.state === "failed",
    );
    if (returning === undefined) continue;
    const node = runnerFor(volume, alive);
    if (node === undefined) {
      plan.unplanned.push({ volume: volume.name, reason: noRunnerReason(volume, nodes, new Set()) });
      continue;
    }
    plan.operations.push({
      kind: "resync",
      volume: volume.name,
      node,
      requestToken: requestToken(input.execution, "resync", volume.name),
      params: { replicaId: returning.replicaId },
    });
  }
  return plan;
}
