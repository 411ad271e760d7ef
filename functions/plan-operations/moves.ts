import { countReplicas, placeAdditionalReplica } from "../../core/placement.js";
import type { NodeRecord, VolumeRecord } from "../../core/state/records.js";
import type { ClusterAccess } from "../shared/cluster.js";
import { liveNodes } from "../shared/nodes.js";
import { requestToken } from "../shared/request-tokens.js";
import type { OperationPlan } from "./planned.js";
import { noRunnerReason, runnerFor } from "./runner.js";

export interface MoveRequest {
  /** The workflow execution's name: the request tokens derive from it. */
  execution: string;
  /** The nodes a moved replica may go to; placement chooses among them. */
  targets: (node: NodeRecord) => boolean;
  /** What a volume with no room among the targets is reported with, before placement's reason. */
  noRoom: string;
  /** The replica of `volume` to move, if any. */
  leaving: (
    volume: VolumeRecord,
    zoneOf: ReadonlyMap<string, string>,
  ) => VolumeRecord["replicas"][number] | undefined;
}

/**
 * A move-replica of each volume `leaving` names a replica of (the new one rebuilt first, then the
 * old one dropped, so the volume never has fewer live replicas), to the node core placement chooses
 * among the targets, run where runnerFor says; a volume with no runner or no room is reported.
 */
export async function planMoves(
  cluster: ClusterAccess,
  request: MoveRequest,
): Promise<Pick<OperationPlan, "operations" | "unplanned">> {
  const [volumes, nodes, unavailableZones] = await Promise.all([
    cluster.store.volumes.list(),
    cluster.store.nodes.list(),
    cluster.store.zones.unavailable(),
  ]);
  const liveness = cluster.liveness();
  const alive = liveNodes(nodes, liveness);
  const zoneOf = new Map(nodes.map((node) => [node.id, node.zone]));
  const targets = nodes.filter(request.targets);
  const view = { ...liveness, nodes: targets, replicaCounts: countReplicas(volumes), unavailableZones };
  const plan: Pick<OperationPlan, "operations" | "unplanned"> = { operations: [], unplanned: [] };
  for (const volume of volumes) {
    const leaving = request.leaving(volume, zoneOf);
    if (leaving === undefined) continue;
    const node = runnerFor(volume, alive);
    const finishing = movedAlready(volume, leaving, targets);
    const placement =
      finishing === undefined
        ? placeAdditionalReplica(volume, view)
        : { ok: true as const, nodes: [finishing] };
    if (node === undefined || !placement.ok) {
      const reason =
        node === undefined
          ? noRunnerReason(volume, nodes, new Set())
          : `${request.noRoom}: ${placement.ok ? "" : placement.message}`;
      plan.unplanned.push({ volume: volume.name, reason });
      continue;
    }
    plan.operations.push({
      kind: "move-replica",
      volume: volume.name,
      node,
      requestToken: requestToken(request.execution, "move", volume.name),
      params: { replicaId: leaving.replicaId, targetNode: placement.nodes[0]! },
    });
  }
  return plan;
}

/**
 * A move cut short between its copy and its drop (its execution failed, a restart plans again) left
 * the volume with more live replicas than its factor: the new one is in sync on a target node. Its
 * node is the move's target, so the move only drops the leaving replica instead of copying a third.
 */
function movedAlready(
  volume: VolumeRecord,
  leaving: VolumeRecord["replicas"][number],
  targets: readonly NodeRecord[],
): string | undefined {
  const live = volume.replicas.filter((replica) => replica.state !== "failed");
  if (live.length <= volume.replicationFactor) return undefined;
  return live.find(
    (replica) =>
      replica.replicaId !== leaving.replicaId &&
      replica.state === "in-sync" &&
      targets.some((node) => node.id === replica.node),
  )?.node;
}
