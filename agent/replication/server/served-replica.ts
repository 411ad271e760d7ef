/**
 * The replica server's view of one local replica: the epoch fence (DESIGN invariant 2) and the
 * rebuild flag. One entry per Replica object, shared by every connection, so a SET_EPOCH on one
 * connection fences writes arriving on all the others.
 */

import type { BlockDevice, ByteRange } from "../../block-device.js";
import type { SnapshotInfo } from "../../store/replica.js";

/**
 * What the server needs from a replica; agent/store/replica.ts's Replica is one. `snapshot`
 * passes the coordinator's snapshot id so every replica names the snapshot the same.
 */
export interface ServedReplica extends BlockDevice {
  readonly epoch: number;
  readonly allocatedBytes: number;
  setEpoch(epoch: number): Promise<void>;
  snapshot(name: string, id: string): Promise<SnapshotInfo>;
  /** The live view's byte ranges holding data, in order: what a rebuild from this replica copies. */
  allocatedRuns(): Iterable<ByteRange>;
  /** The ranges of the regions changed at epoch `since` or later, in order: what a resync copies. */
  changedSince(since: number): ByteRange[];
  resize(sizeBytes: number): Promise<void>;
  deleteSnapshot(snapshotId: string): Promise<void>;
  revert(snapshotId: string): Promise<void>;
  snapshotRuns(snapshotId: string, since?: string): ByteRange[];
  readSnapshot(snapshotId: string, offset: number, length: number): Promise<Buffer>;
}

/** The request's epoch is not the replica's; carries the replica's so the reply can say it. */
export class EpochMismatch extends Error {
  constructor(
    readonly requestEpoch: number,
    readonly replicaEpoch: number,
    why: string,
  ) {
    super(`epoch ${requestEpoch} refused: ${why} (replica at ${replicaEpoch})`);
    this.name = "EpochMismatch";
  }
}

/**
 * Mutations run concurrently, each only if it carries the replica's epoch. An epoch change waits
 * until the mutations already admitted have finished, and mutations arriving meanwhile wait for
 * it, then are checked against the new epoch: once SET_EPOCH has answered, no write carrying the
 * old epoch can land. (A read-write lock with the epoch change as the writer.)
 */
export class ServedReplicaEntry {
  /**
   * Hook for rebuild/resync (a later piece of issue 3): set while this replica is being rebuilt
   * or resynced. It still takes mutations carrying its epoch (a joining replica is write-only),
   * but READ is refused with NOT_IN_SYNC, since its data is incomplete, and GET_STATE reports it.
   * Set and cleared through ReplicaServer.setRebuilding, or by a peer's SET_REBUILDING (which the
   * node's ReplicaAdmin also persists, so a restart keeps it).
   */
  rebuilding = false;
  private active = 0;
  private changing: Promise<void> | undefined;
  private onIdle: (() => void) | undefined;

  constructor(readonly replica: ServedReplica) {}

  get epoch(): number {
    return this.replica.epoch;
  }

  /** Runs `work` if `epoch` is the replica's, else rejects with EpochMismatch; nothing is done then. */
  async mutate<T>(epoch: number, work: () => Promise<T>): Promise<T> {
    while (this.changing !== undefined) await this.changing;
    if (epoch !== this.replica.epoch) {
      throw new EpochMismatch(epoch, this.replica.epoch, "not the replica's epoch");
    }
    this.active++;
    try {
      return await work();
    } finally {
      this.active--;
      if (this.active === 0) this.onIdle?.();
    }
  }

  /**
   * Moves the replica from `expected` (which must be its epoch) to `next` (which must be newer),
   * after every mutation admitted under the old epoch has finished. Changes run one at a time.
   */
  setEpoch(expected: number, next: number): Promise<void> {
    const change = (this.changing ?? Promise.resolve()).then(async () => {
      const current = this.replica.epoch;
      if (expected !== current) throw new EpochMismatch(expected, current, "expected epoch is not current");
      if (next <= current) throw new EpochMismatch(next, current, "an epoch only moves forward");
      if (this.active > 0) {
        await new Promise<void>((resolve) => {
          this.onIdle = resolve;
        });
        this.onIdle = undefined;
      }
      await this.replica.setEpoch(next);
    });
    const settled = change.then(
      () => undefined,
      () => undefined,
    );
    this.changing = settled;
    void settled.then(() => {
      if (this.changing === settled) this.changing = undefined;
    });
    return change;
  }
}
