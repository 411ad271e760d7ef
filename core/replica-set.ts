/**
 * The rules of a volume record's replica set and attachment: what each change does to the record.
 * A change is computed from the record as read and written as one conditional write on the epoch
 * it was read at, which bumps the epoch (VolumeStore.updateIfEpoch): the attached node's
 * coordinator and the workflows that fence a lost node apply the same rules, and of two writers
 * that read one epoch exactly one wins (DESIGN.md invariants 2, 4, 5).
 */
import { isDeepStrictEqual } from "node:util";
import type { VolumeChange, VolumeRecord } from "./state/records.js";

/** A change of the volume record, computed from the record as read. */
export type ReplicaSetChange = (volume: VolumeRecord) => VolumeChange;

export interface ReplicaPlacement {
  replicaId: string;
  nodeId: string;
}

/**
 * `nodeId` becomes the attached node, for an export or for maintenance (see VolumeRecord); the
 * epoch bump fences the previous one.
 */
export const attachTo =
  (nodeId: string, purpose: "export" | "maintenance" = "export"): ReplicaSetChange =>
  () => ({ attachedNode: nodeId, maintenance: purpose === "maintenance" });

/**
 * Failed replicas stay in the record as failed: operators see what was lost and where, and the
 * failed replica's data is never counted as in sync again (it is replaced or resynced, not resumed).
 */
export const failReplicas =
  (replicaIds: readonly string[]): ReplicaSetChange =>
  (volume) => {
    const failed = new Set(replicaIds);
    return {
      replicas: volume.replicas.map((replica) =>
        failed.has(replica.replicaId) ? { ...replica, state: "failed" } : replica,
      ),
    };
  };

export interface AddReplicaOptions {
  /**
   * The replica is one being moved here: another leaves once it is in sync (the copy comes before
   * the drop, so redundancy never dips). The factor stays, with one replica more until the drop,
   * and a move cut short between the two leaves the volume at the factor the operator chose.
   */
  keepFactor?: boolean;
}

/**
 * A new replica joins as rebuilding and replaces a failed one on the same node (replicas stay on
 * distinct nodes); a returning one (same id) goes from failed to rebuilding.
 */
export const addReplica =
  (replica: ReplicaPlacement, { keepFactor = false }: AddReplicaOptions = {}): ReplicaSetChange =>
  (volume) =>
    withReplicas(
      volume,
      [
        ...volume.replicas.filter(
          (other) =>
            other.replicaId !== replica.replicaId &&
            !(other.node === replica.nodeId && other.state === "failed"),
        ),
        { replicaId: replica.replicaId, node: replica.nodeId, state: "rebuilding" },
      ],
      keepFactor ? "keep" : "add",
    );

/** The replica leaves the record for good (the replica count is lowered, not a failure). */
export const dropReplica =
  (replicaId: string): ReplicaSetChange =>
  (volume) =>
    withReplicas(
      volume,
      volume.replicas.filter((replica) => replica.replicaId !== replicaId),
      "drop",
    );

/** A rebuilding replica that holds all the data now counts as in sync. */
export const markInSync =
  (replicaId: string): ReplicaSetChange =>
  (volume) => ({
    replicas: volume.replicas.map((replica) =>
      replica.replicaId === replicaId ? { ...replica, state: "in-sync" } : replica,
    ),
  });

/** Every replica has grown to `sizeBytes`. */
export const resizeTo =
  (sizeBytes: number): ReplicaSetChange =>
  () => ({ sizeBytes });

/**
 * Whether `change`, written on `expectedEpoch`, is what `volume` holds now: a write whose reply
 * was lost (the store went away after applying it) is found landed rather than taken for a
 * conflict, so retrying a change is safe.
 */
export function landed(volume: VolumeRecord, expectedEpoch: number, change: VolumeChange): boolean {
  return (
    volume.epoch === expectedEpoch + 1 &&
    Object.entries(change).every(([field, value]) =>
      isDeepStrictEqual(volume[field as keyof VolumeChange], value),
    )
  );
}

/**
 * A change to `replicas`, with the replication factor following the operator: an add raises it
 * to the replicas that are not failed, a drop lowers it to them (a failure changes neither), and
 * a move's add keeps it.
 */
function withReplicas(
  volume: VolumeRecord,
  replicas: VolumeRecord["replicas"],
  factorRule: "add" | "keep" | "drop",
): VolumeChange {
  const live = replicas.filter((replica) => replica.state !== "failed").length;
  const factor = {
    add: Math.max(volume.replicationFactor, live),
    keep: volume.replicationFactor,
    drop: Math.min(volume.replicationFactor, live),
  }[factorRule];
  return { replicas, replicationFactor: Math.max(1, factor) };
}

/**
 * A lost node leaves the volume: its replicas are failed, and an attachment it held is released, so
 * the epoch bump fences its coordinator should it ever come back, and a healthy node may take the
 * volume over. Only for volumes the lost node coordinates or that are attached nowhere: a live
 * coordinator fails the lost replica itself, and a foreign epoch bump would fence it for nothing.
 * The last in-sync replica is never failed (no one could ever build a coordinator again): it stays
 * in sync, for the node's drives to bring back, while the attachment is still released.
 */
export const fenceNode =
  (nodeId: string): ReplicaSetChange =>
  (volume) => {
    const lost = volume.replicas.filter((replica) => replica.node === nodeId);
    const survives = volume.replicas.some(
      (replica) => replica.node !== nodeId && replica.state === "in-sync",
    );
    return {
      ...(survives ? failReplicas(lost.map((replica) => replica.replicaId))(volume) : {}),
      ...(volume.attachedNode === nodeId ? { attachedNode: null, maintenance: false } : {}),
    };
  };
