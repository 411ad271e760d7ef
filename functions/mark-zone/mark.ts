import { z } from "zod";
import { whyDown, zoneSettleMs } from "../../core/liveness.js";
import type { ClusterAccess } from "../shared/cluster.js";

export const MarkZoneInput = z.object({
  zone: z.string().min(1),
  available: z.boolean(),
  reason: z.string().min(1),
  /** When the failure was reported: the zone's nodes are waited for until ZONE_SETTLE after it. */
  detectedAt: z.iso.datetime().optional(),
  /** False to only look at the zone's nodes (az-failure's wait loop must not undo a restore). */
  mark: z.boolean().default(true),
});
export type MarkZoneInput = z.input<typeof MarkZoneInput>;

export interface MarkedZone {
  zone: string;
  available: boolean;
  /** The zone's nodes that are offline now: their replicas are the ones lost. */
  offlineNodes: string[];
  /**
   * Whether az-failure may go on: every node of the zone is offline, or the settle time has passed.
   * AWS reports an impaired zone (autoshift, Health) before the nodes' heartbeats run out; going on
   * at once would repair nothing and leave the nodes that go silent a moment later to another run.
   */
  settled: boolean;
}

/**
 * Marks a zone unavailable for placement (no new replica lands where the next failure is likely)
 * or available again, and says which of its nodes are offline now. Marking twice is marking once.
 */
export async function markZone(input: MarkZoneInput, cluster: ClusterAccess): Promise<MarkedZone> {
  if (input.mark !== false) await cluster.store.zones.mark(input.zone, input.available, input.reason);
  const liveness = cluster.liveness();
  const members = (await cluster.store.nodes.list()).filter((node) => node.zone === input.zone);
  const offlineNodes = members.filter((node) => whyDown(node, liveness) !== undefined).map((node) => node.id);
  const waited =
    input.detectedAt === undefined
      ? Number.POSITIVE_INFINITY
      : liveness.now.getTime() - Date.parse(input.detectedAt);
  const settled =
    input.available ||
    offlineNodes.length === members.length ||
    waited > zoneSettleMs(liveness.heartbeatTimeoutMs);
  return { zone: input.zone, available: input.available, offlineNodes, settled };
}
