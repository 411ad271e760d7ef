import { z } from "zod";
import { countReplicas, placeAdditionalReplica } from "../../core/placement.js";
import type { VolumeRecord } from "../../core/state/records.js";
import type { ClusterAccess } from "../shared/cluster.js";
import { requestToken } from "../shared/request-tokens.js";
import type { OperationPlan } from "./planned.js";
import { liveNodes, noRunnerReason, runnerFor } from "./runner.js";

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
  const [volumes, nodes, unavailableZones] = await Promise.all([
    cluster.store.volumes.list(),
    cluster.store.nodes.list(),
    cluster.store.zones.unavailable(),
  ]);
  const liveness = cluster.liveness();
  const alive = liveNodes(nodes, liveness);
  const zoneOf = new Map(nodes.map((node) => [node.id, node.zone]));
  const inZone = nodes.filter((node) => node.zone === input.zone);
  const view = { ...liveness, nodes: inZone, replicaCounts: countReplicas(volumes), unavailableZones };
  const plan: OperationPlan = { operations: [], unplanned: [], how: "re-spread" };
  for (const volume of volumes) {
    const doubled = replicaSharingAZone(volume, zoneOf, input.zone);
    if (doubled === undefined) continue;
    const node = runnerFor(volume, alive);
    const placement = placeAdditionalReplica(volume, view);
    if (node === undefined || !placement.ok) {
      const reason =
        node === undefined ? noRunnerReason(volume, nodes, new Set()) : placementReason(placement);
      plan.unplanned.push({ volume: volume.name, reason });
      continue;
    }
    plan.operations.push({
      kind: "move-replica",
      volume: volume.name,
      node,
      requestToken: requestToken(input.execution, "move", volume.name),
      params: { replicaId: doubled.replicaId, targetNode: placement.nodes[0]! },
    });
  }
  return plan;
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

const placementReason = (placement: { ok: false; message: string } | { ok: true }) =>
  placement.ok ? "" : `no room in the returned zone: ${placement.message}`;
