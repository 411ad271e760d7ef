import { z } from "zod";
import { whyDown } from "../../core/liveness.js";
import type { ClusterAccess } from "../shared/cluster.js";

export const MarkZoneInput = z.object({
  zone: z.string().min(1),
  available: z.boolean(),
  reason: z.string().min(1),
});
export type MarkZoneInput = z.infer<typeof MarkZoneInput>;

export interface MarkedZone {
  zone: string;
  available: boolean;
  /** The zone's nodes that are offline now: their replicas are the ones lost. */
  offlineNodes: string[];
}

/**
 * Marks a zone unavailable for placement (no new replica lands where the next failure is likely)
 * or available again, and says which of its nodes are offline now. Marking twice is marking once.
 */
export async function markZone(input: MarkZoneInput, cluster: ClusterAccess): Promise<MarkedZone> {
  await cluster.store.zones.mark(input.zone, input.available, input.reason);
  const liveness = cluster.liveness();
  const offlineNodes = (await cluster.store.nodes.list())
    .filter((node) => node.zone === input.zone && whyDown(node, liveness) !== undefined)
    .map((node) => node.id);
  return { zone: input.zone, available: input.available, offlineNodes };
}
