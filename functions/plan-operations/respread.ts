import { z } from "zod";
import type { VolumeRecord } from "../../core/state/records.js";
import type { ClusterAccess } from "../shared/cluster.js";
import { planMoves } from "./moves.js";
import type { OperationPlan } from "./planned.js";

export const PlanRespreadInput = z.object({
  purpose: z.literal("respread"),
  execution: z.string().min(1),
  /** The zone that came back. */
  zone: z.string().min(1),
});
export type PlanRespreadInput = z.infer<typeof PlanRespreadInput>;

/**
 * After a zone returns: every volume whose live replicas share a zone while none is in the returned
 * one gets one of the sharing replicas moved there (the new one rebuilt first, then the old one
 * dropped), so its replicas are on distinct zones again (DESIGN.md invariant 1). The target is
 * chosen by core placement among the zone's nodes; a volume with no room there is reported.
 */
export async function planRespread(input: PlanRespreadInput, cluster: ClusterAccess): Promise<OperationPlan> {
  const moves = await planMoves(cluster, {
    execution: input.execution,
    targets: (node) => node.zone === input.zone,
    noRoom: "no room in the returned zone",
    leaving: (volume, zoneOf) => replicaSharingAZone(volume, zoneOf, input.zone),
  });
  return { ...moves, how: "re-spread" };
}

/**
 * A live replica of `volume` in a zone holding two or more of them, when none is in `zone`: the
 * one to move. Not the attached node's, which serves reads locally.
 */
function replicaSharingAZone(
  volume: VolumeRecord,
  zoneOf: ReadonlyMap<string, string>,
  zone: string,
): VolumeRecord["replicas"][number] | undefined {
  const live = volume.replicas.filter((replica) => replica.state !== "failed");
  if (live.some((replica) => zoneOf.get(replica.node) === zone)) return undefined;
  const sharing = live.filter(
    (replica) => live.filter((other) => zoneOf.get(other.node) === zoneOf.get(replica.node)).length > 1,
  );
  return sharing.find((replica) => replica.node !== volume.attachedNode) ?? sharing[0];
}
