/**
 * VolumeMembership over the cluster-state store: each change reads the volume record, checks it is
 * still at the expected epoch, and writes what the replica-set rules (core/replica-set.ts) make of
 * it with updateIfEpoch (a CAS that bumps the epoch).
 */
import {
  type AddReplicaOptions,
  addReplica,
  attachTo,
  dropReplica,
  failReplicas,
  landed,
  markInSync,
  type ReplicaPlacement,
  type ReplicaSetChange,
  resizeTo,
} from "../../../core/replica-set.js";
import { EpochConflictError } from "../../../core/state/errors.js";
import type { VolumeChange } from "../../../core/state/records.js";
import type { VolumeStore } from "../../../core/state/volumes.js";
import type { VolumeMembership } from "./volume-membership.js";

type Volumes = Pick<VolumeStore, "get" | "updateIfEpoch">;

export class StoreMembership implements VolumeMembership {
  /** The last change sent: the coordinator retries a write whose reply was lost (see `landed`). */
  private lastSent: { expectedEpoch: number; change: VolumeChange } | undefined;

  constructor(
    private readonly volumes: Volumes,
    readonly volumeId: string,
    /** This coordinator's node: what attach records. */
    readonly nodeId: string,
    /** What attach records the attachment is for. */
    private readonly purpose: "export" | "maintenance" = "export",
  ) {}

  attach(expectedEpoch: number): Promise<number> {
    return this.change(expectedEpoch, attachTo(this.nodeId, this.purpose));
  }

  removeReplicas(replicaIds: readonly string[], expectedEpoch: number): Promise<number> {
    return this.change(expectedEpoch, failReplicas(replicaIds));
  }

  addReplica(
    replica: ReplicaPlacement,
    expectedEpoch: number,
    options: AddReplicaOptions = {},
  ): Promise<number> {
    return this.change(expectedEpoch, addReplica(replica, options));
  }

  dropReplica(replicaId: string, expectedEpoch: number): Promise<number> {
    return this.change(expectedEpoch, dropReplica(replicaId));
  }

  resize(sizeBytes: number, expectedEpoch: number): Promise<number> {
    return this.change(expectedEpoch, resizeTo(sizeBytes));
  }

  markInSync(replicaId: string, expectedEpoch: number): Promise<number> {
    return this.change(expectedEpoch, markInSync(replicaId));
  }

  private async change(expectedEpoch: number, rule: ReplicaSetChange): Promise<number> {
    const volume = await this.volumes.get(this.volumeId);
    const sent = this.lastSent;
    if (sent?.expectedEpoch === expectedEpoch && landed(volume, expectedEpoch, sent.change)) {
      return volume.epoch;
    }
    if (volume.epoch !== expectedEpoch)
      throw new EpochConflictError(this.volumeId, expectedEpoch, volume.epoch);
    const change = rule(volume);
    this.lastSent = { expectedEpoch, change };
    const written = await this.volumes.updateIfEpoch(this.volumeId, expectedEpoch, change);
    return written.epoch;
  }
}
