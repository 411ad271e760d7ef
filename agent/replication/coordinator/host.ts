/**
 * The seam between VolumeCoordinator and its parts (coordinator-chain.ts, coordinator-copies.ts):
 * what a part may ask of the coordinator. The coordinator alone owns the replica set, the epoch,
 * the I/O gate and the state machine; a part changes them only through these calls, so every
 * change still runs one at a time and through the one conditional-write route (changeRecord).
 */
import type { BlockIoError } from "../../block-device.js";
import type { Logger } from "../../log.js";
import type { ReplicaHandle, ReplicaTarget } from "../replica-handle.js";
import type { VolumeMembership } from "./volume-membership.js";

export type Member = ReplicaTarget;

/** One request to one replica at `epoch`. */
export type Send = (handle: ReplicaHandle, epoch: number) => Promise<unknown>;

/** SET_EPOCH for one member from the epoch it is at; untrusted: a rebuild target refusing is no fence. */
export interface EpochMove {
  member: Member;
  from: number;
  trusted: boolean;
}

/** How one record change carries on once the store has it (see CoordinatorHost.changeRecord). */
export interface RecordChange {
  /** Updates the coordinator's view; runs before any replica moves to the new epoch. */
  changed?: () => void;
  /** Which members move, from which epoch; by default every member, from the epoch the write expected. */
  moves?: (expected: number) => EpochMove[];
  /** Members to remove after the moves, with those that failed them. */
  remove?: readonly Member[];
}

export interface CoordinatorHost {
  readonly volumeId: string;
  readonly log: Logger;
  readonly membership: VolumeMembership;
  epoch(): number;
  sizeBytes(): number;
  /** The replica set (in sync and rebuilding), as it is now: a change may replace it. */
  members(): readonly Member[];
  /** The local replica when it is in sync, else an in-sync remote one. */
  readSource(): Member;
  /** Runs `work` alone: new I/O held, in-flight I/O drained, other changes queued behind it. */
  exclusive<T>(state: "holding" | "changing-membership", work: () => Promise<T>): Promise<T>;
  /**
   * The conditional write `write` on the epoch the coordinator holds (retried while the store is
   * unreachable; losing it fences), then `change`. Only inside exclusive().
   */
  changeRecord(write: (expected: number) => Promise<number>, change?: RecordChange): Promise<void>;
  /** Removes the members in `failed` still in the set, by changeRecord. Only inside exclusive(). */
  removeLocked(failed: readonly Member[]): Promise<void>;
  /**
   * Reports members that failed a request outside a change; resolves once they are out of the
   * set, or throws why the coordinator stopped.
   */
  replicasFailed(failed: readonly Member[]): Promise<void>;
  /** Stops the coordinator for good (EPERM from then on) and returns the error to throw. */
  fence(cause: unknown): BlockIoError;
  /** Throws the errno that stopped the coordinator (fenced, failed, closed), if it stopped. */
  throwIfStopped(): void;
}
