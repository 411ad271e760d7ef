/**
 * VolumeMembership over the cluster-state store: each change reads the volume record, checks it is
 * still at the expected epoch, and writes the new replica list with updateIfEpoch (a CAS that bumps
 * the epoch).
 */
import { isDeepStrictEqual } from "node:util";
import { EpochConflictError } from "../../core/state/errors.js";
import type { VolumeChange, VolumeRecord } from "../../core/state/records.js";
import type { VolumeStore } from "../../core/state/volumes.js";
import type { ReplicaPlacement, VolumeMembership } from "./volume-membership.js";

type Volumes = Pick<VolumeStore, "get" | "updateIfEpoch">;

export class StoreMembership implements VolumeMembership {
  /**
   * The last change sent. A write whose reply was lost (the store went away after applying it) is
   * retried by the coordinator; finding exactly this change at expected + 1 means it landed.
   */
  private lastSent: { expectedEpoch: number; change: VolumeChange } | undefined;

  constructor(
    private readonly volumes: Volumes,
    readonly volumeId: string,
    /** This coordinator's node: what attach records. */
    readonly nodeId: string,
  ) {}

  attach(expectedEpoch: number): Promise<number> {
    return this.change(expectedEpoch, () => ({ attachedNode: this.nodeId }));
  }

  /**
   * Removed replicas stay in the record as failed: operators see what was lost and where, and the
   * failed replica's data is never counted as in sync again (it is replaced, not resumed).
   */
  removeReplicas(replicaIds: readonly string[], expectedEpoch: number): Promise<number> {
    const doomed = new Set(replicaIds);
    return this.change(expectedEpoch, (volume) => ({
      replicas: volume.replicas.map((replica) =>
        doomed.has(replica.replicaId) ? { ...replica, state: "failed" } : replica,
      ),
    }));
  }

  /**
   * A new replica replaces a failed one on the same node (replicas stay on distinct nodes); a
   * returning one (same id) goes from failed to rebuilding.
   */
  addReplica(replica: ReplicaPlacement, expectedEpoch: number): Promise<number> {
    return this.change(expectedEpoch, (volume) =>
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
        "add",
      ),
    );
  }

  dropReplica(replicaId: string, expectedEpoch: number): Promise<number> {
    return this.change(expectedEpoch, (volume) =>
      withReplicas(
        volume,
        volume.replicas.filter((replica) => replica.replicaId !== replicaId),
        "drop",
      ),
    );
  }

  resize(sizeBytes: number, expectedEpoch: number): Promise<number> {
    return this.change(expectedEpoch, () => ({ sizeBytes }));
  }

  markInSync(replicaId: string, expectedEpoch: number): Promise<number> {
    return this.change(expectedEpoch, (volume) => ({
      replicas: volume.replicas.map((replica) =>
        replica.replicaId === replicaId ? { ...replica, state: "in-sync" } : replica,
      ),
    }));
  }

  private async change(expectedEpoch: number, compute: (volume: VolumeRecord) => VolumeChange) {
    const volume = await this.volumes.get(this.volumeId);
    const sent = this.lastSent;
    if (
      volume.epoch === expectedEpoch + 1 &&
      sent?.expectedEpoch === expectedEpoch &&
      applied(volume, sent.change)
    ) {
      return volume.epoch;
    }
    if (volume.epoch !== expectedEpoch)
      throw new EpochConflictError(this.volumeId, expectedEpoch, volume.epoch);
    const change = compute(volume);
    this.lastSent = { expectedEpoch, change };
    const written = await this.volumes.updateIfEpoch(this.volumeId, expectedEpoch, change);
    return written.epoch;
  }
}

/**
 * A change to `replicas`, with the replication factor following the operator: an add raises it
 * to the replicas that are not failed, a drop lowers it to them (a failure changes neither).
 */
function withReplicas(
  volume: VolumeRecord,
  replicas: VolumeRecord["replicas"],
  direction: "add" | "drop",
): VolumeChange {
  const live = replicas.filter((replica) => replica.state !== "failed").length;
  const factor =
    direction === "add" ? Math.max(volume.replicationFactor, live) : Math.min(volume.replicationFactor, live);
  return { replicas, replicationFactor: Math.max(1, factor) };
}

function applied(volume: VolumeRecord, change: VolumeChange): boolean {
  return Object.entries(change).every(([field, value]) =>
    isDeepStrictEqual(volume[field as keyof VolumeChange], value),
  );
}
