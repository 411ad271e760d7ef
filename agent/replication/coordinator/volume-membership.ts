/**
 * The coordinator's port to the cluster state: every change of the volume's replica set or
 * attachment is one conditional write on the epoch the coordinator holds, and bumps it. Each call
 * resolves with the new epoch.
 *
 * Errors: EpochConflictError (someone else moved the epoch) or RecordNotFoundError (the volume is
 * gone) mean this coordinator no longer holds the volume, and it fences itself. Any other error
 * is taken as "the store is unreachable" and the call is retried with backoff, so an
 * implementation must make a retried call that already took effect resolve, not conflict.
 */
import type { AddReplicaOptions, ReplicaPlacement } from "../../../core/replica-set.js";
import { EpochConflictError, RecordNotFoundError } from "../../../core/state/errors.js";

export interface VolumeMembership {
  /** Records this node as the volume's attached node (a second attach fences the first). */
  attach(expectedEpoch: number): Promise<number>;
  /** Drops replicas from the set (they must resync before they count again). */
  removeReplicas(replicaIds: readonly string[], expectedEpoch: number): Promise<number>;
  /**
   * Adds (or re-adds) a replica in state "rebuilding"; the volume's replication factor grows to
   * count it, unless the replica is one being moved (`keepFactor`).
   */
  addReplica(replica: ReplicaPlacement, expectedEpoch: number, options?: AddReplicaOptions): Promise<number>;
  /**
   * Takes a replica out of the set for good (the replica count is lowered, not a failure); the
   * replication factor shrinks to what is left.
   */
  dropReplica(replicaId: string, expectedEpoch: number): Promise<number>;
  /** Records the volume's new size (every replica has grown to it). */
  resize(sizeBytes: number, expectedEpoch: number): Promise<number>;
  /** Moves a rebuilding replica to "in-sync". */
  markInSync(replicaId: string, expectedEpoch: number): Promise<number>;
}

/** Whether a membership call failed because the coordinator lost the volume (not a transient error). */
export function lostTheVolume(error: unknown): boolean {
  return error instanceof EpochConflictError || error instanceof RecordNotFoundError;
}
