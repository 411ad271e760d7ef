import { z } from "zod";
import { whyDown } from "../../core/liveness.js";
import type { ClusterAccess } from "../shared/cluster.js";

export const CheckNodeInput = z.object({
  nodeId: z.string().min(1),
  /** The instance the node's drives were moved to: its agent must be the one serving. */
  instanceId: z.string().min(1),
  /** When the drives were moved (kept for the history; the instance id is what proves the return). */
  since: z.iso.datetime(),
  /** How long to wait for it before re-replicating instead. */
  deadline: z.iso.datetime(),
});
export type CheckNodeInput = z.infer<typeof CheckNodeInput>;

export interface NodeCheck {
  /** back: serving from the new instance; waiting: not yet; gave-up: the deadline passed. */
  status: "back" | "waiting" | "gave-up";
  detail: string;
}

/** One look, for node-loss's Wait loop, at whether the node came back on its replacement instance. */
export async function checkNode(input: CheckNodeInput, cluster: ClusterAccess): Promise<NodeCheck> {
  const liveness = cluster.liveness();
  const node = (await cluster.store.nodes.list()).find((candidate) => candidate.id === input.nodeId);
  const down = node === undefined ? "not registered" : whyDown(node, liveness);
  // Only a registration writes instanceId, so the new instance's id in the record is the node's new
  // life (no clock comparison: the agent's clock and the workflow's need not agree).
  if (node?.instanceId === input.instanceId && down === undefined) {
    return { status: "back", detail: `${input.nodeId} serves from ${input.instanceId}` };
  }
  const waiting = `${input.nodeId} is not serving from ${input.instanceId} yet (${down ?? `on ${node?.instanceId ?? "no instance"}`})`;
  if (liveness.now.getTime() > Date.parse(input.deadline)) return { status: "gave-up", detail: waiting };
  return { status: "waiting", detail: waiting };
}
