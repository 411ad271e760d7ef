import { z } from "zod";
import { whyDown } from "../../core/liveness.js";
import { fenceNode as fenceChange } from "../../core/replica-set.js";
import { EpochConflictError, RecordNotFoundError } from "../../core/state/errors.js";
import type { NodeRecord, VolumeRecord } from "../../core/state/records.js";
import type { ClusterAccess } from "../shared/cluster.js";
import { RefusedError } from "../shared/errors.js";

export const FenceNodeInput = z.object({
  nodeId: z.string().min(1),
  reason: z.string().min(1),
});
export type FenceNodeInput = z.infer<typeof FenceNodeInput>;

/** What fencing did to one volume that had a replica on the node or was attached there. */
export interface FencedVolume {
  volume: string;
  /**
   * fenced: its replicas there were failed (and an attachment there released) by compare-and-swap;
   * coordinated: attached to a live node, whose coordinator fails the lost replica itself.
   */
  action: "fenced" | "coordinated";
  attachedNode: string | null;
}

export interface FenceNodeResult {
  nodeId: string;
  zone: string;
  instanceId: string | null;
  volumes: FencedVolume[];
}

/** A concurrent change of a volume is re-read and fenced again; this many rounds is plenty. */
const MAX_ATTEMPTS = 5;

/**
 * Takes a lost node out of every volume it served (DESIGN.md invariant 5: the epoch bump fences
 * its coordinator, so it can never write again when it returns), so its volumes can be repaired
 * elsewhere. Safe to run twice: a volume already fenced has nothing of the node left to fail.
 */
export async function fenceLostNode(input: FenceNodeInput, cluster: ClusterAccess): Promise<FenceNodeResult> {
  const node = await lostNode(cluster, input.nodeId);
  // Down in its record: placement stops choosing it at once, and the agent that takes the node over
  // on a replacement instance may claim it without waiting for the lost heartbeat to go stale.
  await cluster.store.nodes.setState(node.id, "down");
  const volumes: FencedVolume[] = [];
  for (const volume of await cluster.store.volumes.list()) {
    if (!concerns(volume, node.id)) continue;
    volumes.push(await fenceVolume(cluster, volume, node.id));
  }
  return { nodeId: node.id, zone: node.zone, instanceId: node.instanceId ?? null, volumes };
}

async function lostNode(cluster: ClusterAccess, nodeId: string): Promise<NodeRecord> {
  try {
    return await cluster.store.nodes.get(nodeId);
  } catch (error) {
    if (error instanceof RecordNotFoundError)
      throw new RefusedError(`node ${nodeId} is not a node of this cluster`);
    throw error;
  }
}

const concerns = (volume: VolumeRecord, nodeId: string) =>
  volume.attachedNode === nodeId ||
  volume.replicas.some((replica) => replica.node === nodeId && replica.state !== "failed");

async function fenceVolume(
  cluster: ClusterAccess,
  first: VolumeRecord,
  nodeId: string,
): Promise<FencedVolume> {
  let volume = first;
  for (let attempt = 1; ; attempt++) {
    if (!concerns(volume, nodeId))
      return { volume: volume.name, action: "fenced", attachedNode: volume.attachedNode };
    if (await coordinatedElsewhere(cluster, volume, nodeId)) {
      return { volume: volume.name, action: "coordinated", attachedNode: volume.attachedNode };
    }
    try {
      const written = await cluster.store.volumes.updateIfEpoch(
        volume.id,
        volume.epoch,
        fenceChange(nodeId)(volume),
      );
      return { volume: written.name, action: "fenced", attachedNode: written.attachedNode };
    } catch (error) {
      if (!(error instanceof EpochConflictError) || attempt === MAX_ATTEMPTS) throw error;
      volume = await cluster.store.volumes.get(volume.id);
    }
  }
}

/**
 * Attached to another node that is alive: its coordinator owns the record's changes. A node that
 * is not registered is not alive; a store that cannot say fails the task (retried), since fencing
 * a live coordinator's volume would stop its writes for nothing.
 */
async function coordinatedElsewhere(cluster: ClusterAccess, volume: VolumeRecord, nodeId: string) {
  if (volume.attachedNode === null || volume.attachedNode === nodeId) return false;
  const attached = await cluster.store.nodes.get(volume.attachedNode).catch((error: unknown) => {
    if (error instanceof RecordNotFoundError) return undefined;
    throw error;
  });
  return attached !== undefined && whyDown(attached, cluster.liveness()) === undefined;
}
