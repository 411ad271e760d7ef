/**
 * Changes to the replicas' layer chains beyond taking a snapshot: growing the volume, deleting a
 * snapshot, reverting to one, and reading one for a copy elsewhere. Each is sent to the replicas
 * that can make it; one that fails is removed like any failed replica, so the replicas left in
 * the set keep one version of the chain.
 */
import { conflict } from "../../../core/errors.js";
import { BlockIoError, type ByteRange } from "../../block-device.js";
import { UnknownSnapshotError } from "../errors.js";
import type { CoordinatorHost, Member, Send } from "./host.js";
import { classifyReplicaError, judge } from "./replica-outcome.js";

export interface SnapshotReader {
  runs: ByteRange[];
  read(offset: number, length: number): Promise<Buffer>;
}

/** What chain changes need from the coordinator beyond CoordinatorHost. */
export interface ChainHost extends CoordinatorHost {
  /** Runs `work` after the changes queued before it, while I/O goes on. */
  inTurn<T>(work: () => Promise<T>): Promise<T>;
  /** Whether a rebuild or resync is under way. */
  copying(): boolean;
  /** Records the volume's new size in the coordinator's view. */
  resized(sizeBytes: number): void;
}

export class ChainChanges {
  constructor(private readonly host: ChainHost) {}

  /**
   * Every replica grows first (a replica failing it is removed), then the new size is recorded
   * with one CAS and every replica moves to the new epoch. I/O is held meanwhile (growing is O(1):
   * longer sparse files).
   */
  resize(sizeBytes: number): Promise<void> {
    const host = this.host;
    return host.exclusive("holding", async () => {
      if (sizeBytes < host.sizeBytes()) {
        throw new BlockIoError(
          "EINVAL",
          `volume ${host.volumeId}: cannot shrink from ${host.sizeBytes()} bytes`,
        );
      }
      if (sizeBytes === host.sizeBytes()) return;
      await this.fanOut(host.members(), (handle, epoch) => handle.resize(epoch, sizeBytes));
      await host.changeRecord((expected) => host.membership.resize(sizeBytes, expected), {
        changed: () => host.resized(sizeBytes),
      });
      host.log.info({ sizeBytes, epoch: host.epoch() }, "volume resized");
    });
  }

  /**
   * Runs while I/O goes on (each replica merges the layer into the next one up). A replica without
   * the snapshot (rebuilt after it was taken) has nothing to do; one failing otherwise keeps an
   * unreferenced layer, which costs space, not correctness.
   */
  deleteSnapshot(snapshotId: string): Promise<void> {
    const host = this.host;
    return host.inTurn(async () => {
      host.throwIfStopped();
      const epoch = host.epoch();
      const members = host.members();
      const results = await Promise.allSettled(
        members.map((member) => member.handle.deleteSnapshot(epoch, snapshotId)),
      );
      results.forEach((result, i) => {
        if (result.status === "fulfilled" || result.reason instanceof UnknownSnapshotError) return;
        if (classifyReplicaError(result.reason) === "fenced") throw host.fence(result.reason);
        host.log.warn(
          { err: result.reason, replica: members[i]!.replicaId, snapshot: snapshotId },
          "a replica could not delete the snapshot; its layer stays behind",
        );
      });
    });
  }

  /**
   * Runs with I/O held (the caller makes sure no client is connected). A replica that lacks the
   * snapshot, or fails, is removed: it is resynced later, over everything (a revert marks every
   * region changed). Refused while a rebuild runs: its target has no snapshot to revert to.
   */
  revert(snapshotId: string): Promise<void> {
    const host = this.host;
    return host.exclusive("holding", async () => {
      if (host.copying()) {
        throw conflict(`volume ${host.volumeId}: a replica is being rebuilt; revert once it is in sync`);
      }
      const inSync = host.members().filter((member) => member.state === "in-sync");
      await this.fanOut(inSync, (handle, epoch) => handle.revert(epoch, snapshotId));
      host.log.info({ snapshot: snapshotId }, "volume reverted");
    });
  }

  /**
   * Reads from an in-sync replica that has the snapshot (the local one first; a replica rebuilt
   * after the snapshot lacks it). Snapshots are frozen, so the copy takes no lock; reads fail if
   * that replica goes away. With `since` (an older snapshot), the runs are where the two differ.
   */
  async snapshotReader(snapshotId: string, since?: string): Promise<SnapshotReader> {
    const host = this.host;
    host.throwIfStopped();
    const epoch = host.epoch();
    const candidates = host
      .members()
      .filter((member) => member.state === "in-sync")
      .sort((a, b) => Number(b.handle.local) - Number(a.handle.local));
    let lastError: unknown;
    for (const { handle } of candidates) {
      try {
        const runs = await handle.snapshotRuns(epoch, snapshotId, since);
        return { runs, read: (offset, length) => handle.readSnapshot(epoch, snapshotId, offset, length) };
      } catch (error) {
        if (classifyReplicaError(error) === "fenced") throw host.fence(error);
        lastError = error;
      }
    }
    throw lastError instanceof Error ? lastError : new BlockIoError("EIO", "no replica holds the snapshot");
  }

  /**
   * Sends one chain change to `targets` (inside a change: I/O held) and removes those that fail
   * it; throws when none succeeded, or with a client error (a bad size).
   */
  private async fanOut(targets: readonly Member[], send: Send): Promise<void> {
    const host = this.host;
    const epoch = host.epoch();
    const results = await Promise.allSettled(targets.map((member) => send(member.handle, epoch)));
    const verdict = judge(targets, results);
    if (verdict.fenced !== undefined) throw host.fence(verdict.fenced);
    if (verdict.clientError !== undefined) throw verdict.clientError;
    if (verdict.succeeded.length === 0) {
      const reason = results.find((result) => result.status === "rejected")?.reason;
      throw reason instanceof Error ? reason : new BlockIoError("EIO", "no replica made the change");
    }
    await host.removeLocked(verdict.failed);
  }
}
