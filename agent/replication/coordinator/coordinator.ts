/**
 * The coordinator of one attached replicated volume: the NBD server's BlockDevice on the attached
 * node. It sends every mutation to every replica in the set (in-sync and rebuilding) with the
 * volume's epoch and completes it only when all of them have it (protocol C, DESIGN invariant 3);
 * reads go to the local replica when it is in sync, else to an in-sync remote one.
 *
 * State machine (`state`, transitions checked in TRANSITIONS):
 *
 *   serving ──snapshot──▶ holding ──▶ serving
 *   serving | holding ──replica failed / attach / rebuild join / in-sync──▶ changing-membership ──▶ serving
 *   any live state ──StaleEpochError, or a CAS lost (EpochConflictError)──▶ fenced   (I/O: EPERM)
 *   any live state ──the last in-sync replica failed──▶ failed                     (I/O: EIO)
 *   any state ──close()──▶ closed                                                  (I/O: ESHUTDOWN)
 *
 * fenced and failed are final: this object never writes again (close() still releases it, and
 * keeps answering with the errno that stopped it). In holding and changing-membership no new I/O
 * is admitted: the I/O in flight drains first, then the change runs alone.
 *
 * Failure handling (invariant 4): a request that saw a replica fail leaves the in-flight count
 * and waits, unacknowledged, while the coordinator holds new I/O, drains, removes the failed
 * replicas with ONE conditional write that bumps the epoch (retried with backoff for as long as
 * the store is unreachable), and moves the remaining replicas to the new epoch (a replica failing
 * that is removed too, in a loop). Only then is the waiting request acknowledged: it is on every
 * replica the store still lists. Overlapping ranges are locked for the whole request, so a
 * rebuild's copy of a range never overtakes a client write to it (see rebuild.ts).
 *
 * Two parts live in files of their own and reach the coordinator only through the hooks of
 * coordinator-host.ts: the chain changes (coordinator-chain.ts) and the copies between replicas,
 * rebuild, resync and takeover reconcile (coordinator-copies.ts).
 */
import { EventEmitter } from "node:events";
import { StrataError } from "../../../core/errors.js";
import type { AddReplicaOptions } from "../../../core/replica-set.js";
import {
  type BlockDevice,
  BlockIoError,
  type WriteOptions,
  type WriteZeroesOptions,
} from "../../block-device.js";
import { log as defaultLog, type Logger } from "../../log.js";
import { Mutex } from "../../mutex.js";
import { IoGate } from "../../store/io-gate.js";
import { RangeLocks } from "../../store/range-locks.js";
import type { SnapshotInfo } from "../../store/replica.js";
import { MAX_RETRY_MS, nextDelay, sleep } from "../backoff.js";
import type { ReplicaRole, ReplicaTarget, SnapshotRequest } from "../replica-handle.js";
import { ChainChanges, type ChainHost, type SnapshotReader } from "./chain.js";
import { type CopyHost, ReplicaCopies } from "./copies.js";
import type { EpochMove, Member, RecordChange, Send } from "./host.js";
import { replicaRemovals } from "./metrics.js";
import type { Rebuild, RebuildOptions } from "./rebuild.js";
import { classifyReplicaError, judge } from "./replica-outcome.js";
import { lostTheVolume, type VolumeMembership } from "./volume-membership.js";

export type { SnapshotReader } from "./chain.js";

export type CoordinatorState = "serving" | "holding" | "changing-membership" | "fenced" | "failed" | "closed";

const TRANSITIONS: Readonly<Record<CoordinatorState, readonly CoordinatorState[]>> = {
  serving: ["holding", "changing-membership", "fenced", "failed", "closed"],
  holding: ["serving", "changing-membership", "fenced", "failed", "closed"],
  "changing-membership": ["serving", "fenced", "failed", "closed"],
  fenced: ["closed"],
  failed: ["closed"],
  closed: [],
};

/**
 * How often, while writes go on, the coordinator moves the replicas to a new epoch (a checkpoint).
 * Dirty-region tracking counts a returning replica's missed changes from the epoch it left at, so
 * this bounds a resync after a long-lived attachment to about this much writing.
 */
export const DEFAULT_CHECKPOINT_MS = 30_000;

export interface CoordinatorOptions {
  volumeId: string;
  sizeBytes: number;
  /** The volume's epoch as read from the store, which the replicas are at. */
  epoch: number;
  replicas: readonly ReplicaTarget[];
  membership: VolumeMembership;
  log?: Logger;
  /** Longest wait between two attempts to reach an unreachable store (default MAX_RETRY_MS). */
  maxStoreRetryMs?: number;
  /** Time between checkpoints while writes go on (default DEFAULT_CHECKPOINT_MS; 0: none). */
  checkpointIntervalMs?: number;
}

export interface AttachOptions {
  /**
   * The previous coordinator did not detach cleanly (it died or was fenced): its last writes may be
   * on some replicas only, so the replicas are reconciled (see reconciled).
   */
  reconcile?: boolean;
}

/** What `replicas()` reports, e.g. for `volume inspect`. */
export interface ReplicaStatus {
  replicaId: string;
  nodeId: string;
  state: ReplicaRole;
}

/**
 * Events, for logs, tests and the volume manager:
 * - state (from, to): every transition.
 * - store-unreachable (error, retryInMs): a membership write failed for a reason other than losing
 *   the volume; I/O that needs it keeps waiting.
 * - replicas-removed (replicaIds, newEpoch): the store no longer lists them.
 */
export interface CoordinatorEvents {
  state: [from: CoordinatorState, to: CoordinatorState];
  "store-unreachable": [error: Error, retryInMs: number];
  "replicas-removed": [replicaIds: string[], epoch: number];
}

export class VolumeCoordinator extends EventEmitter<CoordinatorEvents> implements BlockDevice {
  readonly volumeId: string;
  /** Grows with resize(); an NBD connection keeps the size it was opened with. */
  sizeBytes: number;
  readonly log: Logger;
  private currentEpoch: number;
  private members: Member[];
  private currentState: CoordinatorState = "serving";
  private readonly membership: VolumeMembership;
  private readonly maxStoreRetryMs: number;
  /** Admission of I/O: counts what is in flight, holds new I/O during changes. */
  private readonly gate = new IoGate();
  /** Changes (membership, snapshot, close) run one at a time. */
  private readonly control = new Mutex();
  /** Byte ranges of client mutations and rebuild copies in progress (inclusive ends). */
  private readonly locks = new RangeLocks();
  /** Replicas that failed a request and wait for the next membership change. */
  private readonly suspects = new Set<Member>();
  private recoveryQueued = false;
  private lastRecovery: Promise<void> = Promise.resolve();
  /** Why I/O fails from now on, once fenced or failed. */
  private stopError: BlockIoError | undefined;
  private closing: Promise<void> | undefined;
  private readonly chain: ChainChanges;
  private readonly copies: ReplicaCopies;
  private mutatedSinceCheckpoint = false;
  /**
   * Settles once the replicas hold the same bytes after a takeover (attach with `reconcile`), with
   * the bytes copied to each; 0 at once when there was nothing to reconcile.
   */
  reconciled: Promise<number> = Promise.resolve(0);
  private readonly checkpointTimer: NodeJS.Timeout | undefined;

  constructor(options: CoordinatorOptions) {
    super();
    this.volumeId = options.volumeId;
    this.sizeBytes = options.sizeBytes;
    this.currentEpoch = options.epoch;
    this.members = options.replicas.map((target) => ({ ...target }));
    this.membership = options.membership;
    this.maxStoreRetryMs = options.maxStoreRetryMs ?? MAX_RETRY_MS;
    this.log = (options.log ?? defaultLog).child({ volume: options.volumeId, component: "coordinator" });
    if (!this.members.some((member) => member.state === "in-sync")) {
      throw new BlockIoError("EIO", `volume ${this.volumeId}: no in-sync replica to coordinate`);
    }
    const host = this.partsHost();
    this.chain = new ChainChanges(host);
    this.copies = new ReplicaCopies(host);
    const interval = options.checkpointIntervalMs ?? DEFAULT_CHECKPOINT_MS;
    if (interval > 0) {
      this.checkpointTimer = setInterval(() => this.checkpointIfWritten(), interval);
      this.checkpointTimer.unref();
    }
  }

  get epoch(): number {
    return this.currentEpoch;
  }

  get state(): CoordinatorState {
    return this.currentState;
  }

  replicas(): ReplicaStatus[] {
    return this.members.map(({ replicaId, nodeId, state }) => ({ replicaId, nodeId, state }));
  }

  /** The rebuild of `replicaId` running now, for its progress. */
  rebuild(replicaId: string): Rebuild | undefined {
    return this.copies.get(replicaId);
  }

  /** Every rebuild and resync under way, including those whose target has not joined the set yet. */
  runningCopies(): Rebuild[] {
    return this.copies.all();
  }

  /**
   * Takes the volume for this node: one conditional write records the attachment and bumps the
   * epoch (fencing any previous coordinator), then every replica moves to the new epoch from the
   * one it is at (a previous coordinator may have died between its CAS and its SET_EPOCHs).
   * Replicas that cannot be reached are removed.
   */
  attach(options: AttachOptions = {}): Promise<void> {
    return this.exclusive("changing-membership", async () => {
      // A rebuild the previous coordinator left unfinished cannot go on here: the target leaves
      // the set, keeping its rebuild mark, and is resynced in full when it is next added.
      const stalled = this.members.filter((member) => member.state === "rebuilding");
      const members = this.members.filter((member) => member.state === "in-sync");
      const standings = await Promise.allSettled(members.map((member) => member.handle.standing()));
      const unreachable = members.filter((_, i) => standings[i]!.status === "rejected");
      const reachable = members.flatMap((member, i) => {
        const result = standings[i]!;
        return result.status === "fulfilled" ? [{ member, from: result.value.epoch }] : [];
      });
      const ahead = reachable.find(({ from }) => from > this.currentEpoch);
      if (ahead !== undefined) {
        throw this.fence(
          new Error(`replica ${ahead.member.replicaId} is at epoch ${ahead.from}, past ${this.currentEpoch}`),
        );
      }
      await this.changeRecord((expected) => this.membership.attach(expected), {
        moves: () => reachable.map(({ member, from }) => ({ member, from, trusted: true })),
        remove: [...unreachable, ...stalled],
      });
      this.log.info({ epoch: this.currentEpoch }, "coordinator attached the volume");
      if (options.reconcile === true && reachable.length > 1) {
        const since = Math.min(...reachable.map(({ from }) => from));
        this.reconciled = this.copies.reconcile(since);
      }
    });
  }

  async read(offset: number, length: number): Promise<Buffer> {
    for (;;) {
      await this.enter();
      const source = this.readSource();
      let failure: unknown;
      try {
        return await source.handle.read(this.currentEpoch, offset, length);
      } catch (error) {
        failure = error;
      } finally {
        this.gate.leave();
      }
      const kind = classifyReplicaError(failure);
      if (kind === "fenced") throw this.fence(failure);
      if (kind === "client") throw failure;
      // Another in-sync replica has the same bytes: drop this one and read there.
      await this.replicasFailed([source]);
    }
  }

  write(offset: number, data: Buffer, options: WriteOptions): Promise<void> {
    return this.mutate(offset, data.length, (handle, epoch) => handle.write(epoch, offset, data, options));
  }

  writeZeroes(offset: number, length: number, options: WriteZeroesOptions): Promise<void> {
    return this.mutate(offset, length, (handle, epoch) => handle.writeZeroes(epoch, offset, length, options));
  }

  trim(offset: number, length: number, options: WriteOptions): Promise<void> {
    return this.mutate(offset, length, (handle, epoch) => handle.trim(epoch, offset, length, options));
  }

  flush(): Promise<void> {
    return this.mutate(0, 0, (handle, epoch) => handle.flush(epoch));
  }

  /**
   * A crash-consistent snapshot across replicas: new I/O is held and what is in flight drains, so
   * every in-sync replica freezes the same point of the write stream, under the same id. A
   * rebuilding replica gets no snapshot (it has no complete data to freeze). A replica failing the
   * snapshot is removed like any failed replica; the snapshot succeeds if the rest took it.
   */
  snapshot(request: SnapshotRequest): Promise<SnapshotInfo> {
    return this.exclusive("holding", () => this.snapshotHeld(request));
  }

  /**
   * Holds the volume's I/O (new I/O waits, what is in flight drains) while `work` runs, and gives
   * it a way to take snapshots within the hold: how several volumes are snapshotted at one point
   * of their write streams (group-snapshot.ts nests the holds of all of them).
   */
  holdForSnapshots<T>(work: (snapshot: (request: SnapshotRequest) => Promise<SnapshotInfo>) => Promise<T>) {
    return this.exclusive("holding", () => work((request) => this.snapshotHeld(request)));
  }

  private async snapshotHeld(request: SnapshotRequest): Promise<SnapshotInfo> {
    const inSync = this.members.filter((member) => member.state === "in-sync");
    const epoch = this.currentEpoch;
    const results = await Promise.allSettled(inSync.map((member) => member.handle.snapshot(epoch, request)));
    const verdict = judge(inSync, results);
    if (verdict.fenced !== undefined) throw this.fence(verdict.fenced);
    await this.removeLocked(verdict.failed);
    this.throwIfStopped();
    if (verdict.clientError !== undefined) throw verdict.clientError;
    const taken = results.find((result) => result.status === "fulfilled");
    if (taken === undefined) throw new BlockIoError("EIO", "no replica took the snapshot");
    this.log.info({ snapshot: request.id, replicas: verdict.succeeded.length }, "volume snapshot taken");
    return taken.value;
  }

  /**
   * Adds a new, empty replica while I/O goes on: it joins write-only (state rebuilding), the
   * allocated data is copied to it from an in-sync replica, then it is marked in sync. The
   * returned Rebuild reports progress; its `done` settles when the replica is in sync or the
   * rebuild failed (the target is then removed from the set). `joining.keepFactor`: it is a
   * move's new replica (see core/replica-set.ts).
   */
  addReplica(
    target: Omit<ReplicaTarget, "state">,
    options: RebuildOptions = {},
    joining: AddReplicaOptions = {},
  ): Rebuild {
    return this.copies.start("rebuild", target, options, joining);
  }

  /**
   * Brings back a replica that left the set with its data (its node restarted, a partition
   * healed): it joins write-only like a new one, but only the regions changed since the epoch it
   * left at are copied — on an in-sync replica, or on it (writes that reached only it).
   */
  resyncReplica(target: Omit<ReplicaTarget, "state">, options: RebuildOptions = {}): Rebuild {
    return this.copies.start("resync", target, options);
  }

  /** Grows the volume on every replica, with I/O held; it cannot shrink. */
  resize(sizeBytes: number): Promise<void> {
    return this.chain.resize(sizeBytes);
  }

  /** Deletes a snapshot on every replica holding it, while I/O goes on. */
  deleteSnapshot(snapshotId: string): Promise<void> {
    return this.chain.deleteSnapshot(snapshotId);
  }

  /** Makes the volume the snapshot again on every in-sync replica, with I/O held. */
  revert(snapshotId: string): Promise<void> {
    return this.chain.revert(snapshotId);
  }

  /** A snapshot's data for a copy elsewhere (a clone): where it holds data, and its bytes. */
  snapshotReader(snapshotId: string, since?: string): Promise<SnapshotReader> {
    return this.chain.snapshotReader(snapshotId, since);
  }

  /**
   * Moves every replica to a new epoch at one point of the write stream: one CAS re-recording the
   * attachment, then SET_EPOCH on each. Epochs are what dirty-region tracking counts from, so a
   * replica that leaves later resyncs only the regions changed since this point.
   */
  checkpoint(): Promise<void> {
    return this.exclusive("changing-membership", async () => {
      await this.changeRecord((expected) => this.membership.attach(expected), {
        changed: () => {
          this.mutatedSinceCheckpoint = false;
        },
      });
      this.log.debug({ epoch: this.currentEpoch }, "checkpoint");
    });
  }

  private checkpointIfWritten(): void {
    if (!this.mutatedSinceCheckpoint || this.currentState !== "serving") return;
    this.checkpoint().catch((error: unknown) => this.log.warn({ err: error }, "checkpoint failed"));
  }

  /**
   * Takes a replica out of the set and the record for good (the replica count is lowered, or a
   * failed replica is no longer needed): one CAS, then the rest move to the new epoch, so the
   * dropped one can never be written again. A running rebuild of it is abandoned. The last
   * in-sync replica cannot be dropped.
   */
  dropReplica(replicaId: string): Promise<void> {
    return this.exclusive("changing-membership", async () => {
      // Not a member: a failed replica, still in the record only.
      const doomed = this.members.find((member) => member.replicaId === replicaId);
      const remaining = this.members.filter((member) => member !== doomed);
      if (!remaining.some((member) => member.state === "in-sync")) {
        throw new BlockIoError("EINVAL", `replica ${replicaId} is the volume's last in-sync replica`);
      }
      await this.changeRecord((expected) => this.membership.dropReplica(replicaId, expected), {
        changed: () => {
          this.members = remaining;
          this.log.info({ replica: replicaId, epoch: this.currentEpoch }, "replica dropped from the volume");
          doomed?.handle
            .close()
            .catch((error: unknown) => this.log.debug({ err: error }, "closing a dropped replica"));
        },
      });
    });
  }

  /**
   * Fails new I/O with ESHUTDOWN (or the errno that stopped the coordinator), lets what is in
   * flight finish, waits for running rebuilds to give up, and closes the handles (remote
   * connections; local replicas stay open, they are the volume manager's).
   */
  close(): Promise<void> {
    this.closing ??= (async () => {
      clearInterval(this.checkpointTimer);
      const hold = this.gate.quiesce();
      await this.control.run(async () => {
        const resume = await hold;
        this.transition("closed");
        resume();
      });
      await Promise.allSettled(this.copies.all().map((rebuild) => rebuild.done));
      await this.reconciled;
      await Promise.allSettled(this.members.map((member) => member.handle.close()));
      this.log.info("coordinator closed");
    })();
    return this.closing;
  }

  // ---- the data path ----

  /**
   * Sends one mutation to every replica in the set and resolves once all the replicas still in
   * the set have it. Replicas that failed it are removed first; a replica that stayed in the set
   * without getting it (none, normally) gets it again at the new epoch. Mutations are idempotent,
   * and `data` stays the caller's until this settles, so resending is safe.
   */
  private async mutate(offset: number, length: number, send: Send): Promise<void> {
    const range = length > 0 ? await this.locks.acquire(offset, offset + length - 1) : undefined;
    this.mutatedSinceCheckpoint = true;
    try {
      let targets: Member[] | undefined;
      for (;;) {
        await this.enter();
        const epoch = this.currentEpoch;
        const sentTo = targets ?? this.members.slice();
        let results: PromiseSettledResult<unknown>[];
        try {
          results = await Promise.allSettled(sentTo.map((member) => send(member.handle, epoch)));
        } finally {
          this.gate.leave();
        }
        const verdict = judge(sentTo, results);
        if (verdict.fenced !== undefined) throw this.fence(verdict.fenced);
        if (verdict.failed.length > 0) await this.replicasFailed(verdict.failed);
        if (verdict.clientError !== undefined) throw verdict.clientError;
        const missing = this.members.filter(
          (member) => sentTo.includes(member) && !verdict.succeeded.includes(member),
        );
        if (missing.length === 0) return;
        targets = missing;
      }
    } finally {
      if (range !== undefined) this.locks.release(range);
    }
  }

  /** Admits one request (the caller must gate.leave()), or throws the errno that stopped us. */
  private async enter(): Promise<void> {
    this.throwIfStopped();
    await this.gate.enter();
    if (this.stopError !== undefined || this.closing !== undefined) {
      this.gate.leave();
      this.throwIfStopped();
    }
  }

  /** The local replica when it is in sync, else an in-sync remote one. */
  private readSource(): Member {
    const inSync = this.members.filter((member) => member.state === "in-sync");
    const source = inSync.find((member) => member.handle.local) ?? inSync[0];
    // Unreachable while serving: losing the last in-sync replica moves the coordinator to failed.
    if (source === undefined) throw new BlockIoError("EIO", `volume ${this.volumeId}: no in-sync replica`);
    return source;
  }

  // ---- membership changes ----

  /**
   * Reports replicas that failed a request and resolves once they are out of the set (or throws
   * if the coordinator stopped meanwhile). New I/O is held from now on; the removal itself waits
   * for the I/O in flight to drain, and for any change already running.
   */
  private replicasFailed(failed: readonly Member[]): Promise<void> {
    let added = false;
    for (const member of failed) {
      if (this.members.includes(member) && !this.suspects.has(member)) {
        this.suspects.add(member);
        added = true;
      }
    }
    if (added && !this.recoveryQueued) {
      this.recoveryQueued = true;
      // Held now, not when the change gets its turn: no request may start on the failed set.
      const hold = this.gate.quiesce();
      this.lastRecovery = this.control.run(async () => {
        this.recoveryQueued = false;
        const doomed = [...this.suspects];
        this.suspects.clear();
        const resume = await hold;
        try {
          if (this.stopError === undefined && this.closing === undefined) {
            this.transition("changing-membership");
            await this.removeLocked(doomed);
          }
        } catch (error) {
          // Whatever stopped the change (fenced, failed, closing) is in throwIfStopped's answer.
          this.log.warn({ err: error }, "replica removal did not complete");
        } finally {
          this.backToServing();
          resume();
        }
      });
    }
    return this.lastRecovery.then(() => this.throwIfStopped());
  }

  /**
   * Removes `failed` (those still in the set) with one conditional write, then moves the rest to
   * the new epoch; replicas failing that are removed the same way, until none fails. Runs inside
   * a change (I/O held and drained).
   */
  private async removeLocked(failed: readonly Member[]): Promise<void> {
    const doomed = failed.filter((member) => this.members.includes(member));
    if (doomed.length === 0) return;
    this.transition("changing-membership");
    const ids = doomed.map((member) => member.replicaId);
    const remaining = this.members.filter((member) => !doomed.includes(member));
    if (!remaining.some((member) => member.state === "in-sync")) {
      throw this.stop(
        "failed",
        new BlockIoError(
          "EIO",
          `volume ${this.volumeId}: its last in-sync replica failed (${ids.join(", ")})`,
        ),
      );
    }
    this.log.warn({ replicas: ids, epoch: this.currentEpoch }, "removing failed replicas from the volume");
    await this.changeRecord((expected) => this.membership.removeReplicas(ids, expected), {
      changed: () => {
        this.members = remaining;
        replicaRemovals.inc({ volume: this.volumeId }, doomed.length);
        this.emit("replicas-removed", ids, this.currentEpoch);
        for (const member of doomed) {
          member.handle
            .close()
            .catch((error: unknown) => this.log.debug({ err: error }, "closing a removed replica"));
        }
      },
    });
  }

  /**
   * The one way the coordinator changes the volume's record: `write` is the conditional write on
   * the epoch it holds (retried while the store cannot be reached; losing it fences us), `changed`
   * updates the coordinator's view once the store has the change, then the replicas move to the
   * new epoch (`moves`: by default every member, from the epoch the write expected), and those
   * failing that are removed together with `remove`, by this same route. Runs inside a change (I/O held and drained).
   */
  private async changeRecord(
    write: (expected: number) => Promise<number>,
    options: RecordChange = {},
  ): Promise<void> {
    const expected = this.currentEpoch;
    this.currentEpoch = await this.storeCall(() => write(expected));
    options.changed?.();
    const moves =
      options.moves?.(expected) ?? this.members.map((member) => ({ member, from: expected, trusted: true }));
    const failed = await this.moveEpoch(moves, this.currentEpoch);
    await this.removeLocked([...(options.remove ?? []), ...failed]);
  }

  /**
   * SET_EPOCH on each member, concurrently; resolves with the members that failed it. A trusted
   * member refusing (it is not at the epoch we expect) means someone else moved it: we are fenced.
   * An untrusted one (a rebuild target we just met) refusing is only a failed target.
   */
  private async moveEpoch(moves: readonly EpochMove[], to: number): Promise<Member[]> {
    const results = await Promise.allSettled(
      moves.map(({ member, from }) => member.handle.setEpoch(from, to)),
    );
    const failed: Member[] = [];
    results.forEach((result, i) => {
      if (result.status === "fulfilled") return;
      const { member, trusted } = moves[i]!;
      if (trusted && classifyReplicaError(result.reason) === "fenced") throw this.fence(result.reason);
      this.log.warn(
        { err: result.reason, replica: member.replicaId, epoch: to },
        "a replica failed SET_EPOCH",
      );
      failed.push(member);
    });
    return failed;
  }

  /**
   * One membership write, retried with backoff while the store cannot be reached: I/O waiting on
   * it stays unacknowledged (invariant 4). Losing the volume to someone else fences us.
   */
  private async storeCall(call: () => Promise<number>): Promise<number> {
    let delay: number | undefined;
    for (;;) {
      this.throwIfStopped();
      try {
        return await call();
      } catch (error) {
        if (lostTheVolume(error)) throw this.fence(error);
        // The store refused the change itself (it breaks a record rule): no retry can make it pass,
        // so it fails, and whatever waited on it is not acknowledged.
        if (error instanceof StrataError && error.code === "INVALID_ARGUMENT") throw error;
        delay = nextDelay(delay, this.maxStoreRetryMs);
        const reason = error instanceof Error ? error : new Error(String(error));
        this.log.warn({ err: reason, retryInMs: delay }, "cluster state unreachable; I/O waits");
        this.emit("store-unreachable", reason, delay);
        await sleep(delay);
      }
    }
  }

  /** Runs `work` alone: new I/O held, in-flight I/O drained, other changes queued behind it. */
  private exclusive<T>(state: "holding" | "changing-membership", work: () => Promise<T>): Promise<T> {
    const hold = this.gate.quiesce();
    return this.control.run(async () => {
      const resume = await hold;
      try {
        this.throwIfStopped();
        this.transition(state);
        return await work();
      } finally {
        this.backToServing();
        resume();
      }
    });
  }

  // ---- the parts' view of the coordinator ----

  private partsHost(): ChainHost & CopyHost {
    return {
      volumeId: this.volumeId,
      log: this.log,
      membership: this.membership,
      locks: this.locks,
      epoch: () => this.currentEpoch,
      sizeBytes: () => this.sizeBytes,
      members: () => this.members,
      readSource: () => this.readSource(),
      exclusive: (state, work) => this.exclusive(state, work),
      inTurn: (work) => this.control.run(work),
      changeRecord: (write, change) => this.changeRecord(write, change),
      removeLocked: (failed) => this.removeLocked(failed),
      replicasFailed: (failed) => this.replicasFailed(failed),
      fence: (cause) => this.fence(cause),
      throwIfStopped: () => this.throwIfStopped(),
      addMember: (member) => {
        this.members = [...this.members, member];
      },
      enter: () => this.enter(),
      leave: () => this.gate.leave(),
      copying: () => this.copies.all().length > 0,
      resized: (sizeBytes) => {
        this.sizeBytes = sizeBytes;
      },
    };
  }

  // ---- states ----

  private transition(to: CoordinatorState): void {
    const from = this.currentState;
    if (from === to) return;
    if (!TRANSITIONS[from].includes(to)) throw new Error(`coordinator: no transition from ${from} to ${to}`);
    this.currentState = to;
    this.log.debug({ from, to }, "coordinator state");
    this.emit("state", from, to);
  }

  private backToServing(): void {
    if (this.currentState === "holding" || this.currentState === "changing-membership") {
      this.transition("serving");
    }
  }

  /** Someone else holds the volume now: every pending and later request fails with EPERM. */
  private fence(cause: unknown): BlockIoError {
    const message = cause instanceof Error ? cause.message : String(cause);
    return this.stop(
      "fenced",
      new BlockIoError("EPERM", `volume ${this.volumeId}: this coordinator is fenced (${message})`),
    );
  }

  private stop(state: "fenced" | "failed", error: BlockIoError): BlockIoError {
    if (this.stopError !== undefined) return this.stopError;
    this.stopError = error;
    this.log.error({ epoch: this.currentEpoch, reason: error.message }, `coordinator ${state}`);
    if (this.currentState !== "closed") this.transition(state);
    return error;
  }

  private throwIfStopped(): void {
    if (this.stopError !== undefined) throw this.stopError;
    if (this.closing !== undefined) {
      throw new BlockIoError("ESHUTDOWN", `volume ${this.volumeId}: the coordinator is closed`);
    }
  }
}
