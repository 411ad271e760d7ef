/**
 * The coordinator's side of copying data between replicas while I/O goes on: rebuilds (a new,
 * empty replica), resyncs (one that comes back with older data) and the reconcile after a
 * takeover. rebuild.ts drives a rebuild or resync through its phases; this part carries out each
 * phase against the coordinator: the join and the final in-sync mark as changes of the replica
 * set, and each copied range under the same range lock as client writes, so an older copy never
 * lands over a newer write.
 */
import type { AddReplicaOptions } from "../../../core/replica-set.js";
import { BlockIoError, type ByteRange } from "../../block-device.js";
import { returnIoBuffer } from "../../io-buffers.js";
import type { RangeLocks } from "../../store/range-locks.js";
import type { ReplicaStanding, ReplicaTarget } from "../replica-handle.js";
import type { CoordinatorHost, Member } from "./host.js";
import {
  type CopyPlan,
  chunksOf,
  DEFAULT_CHUNK_BYTES,
  mergeRuns,
  type Rebuild,
  RebuildAbortedError,
  type RebuildHost,
  type RebuildKind,
  type RebuildOptions,
  splitRuns,
  startRebuild,
  type ZeroChunks,
} from "./rebuild.js";
import { classifyReplicaError } from "./replica-outcome.js";

/** What copies need from the coordinator beyond CoordinatorHost. */
export interface CopyHost extends CoordinatorHost {
  /** Puts a joining target in the set; only in a change's `changed`. */
  addMember(member: Member): void;
  /** Admits one request like client I/O (held during changes); the caller must leave(). */
  enter(): Promise<void>;
  leave(): void;
  /** The range locks client mutations take. */
  readonly locks: RangeLocks;
}

export class ReplicaCopies {
  private readonly running = new Map<string, Rebuild>();

  constructor(private readonly host: CopyHost) {}

  /** The rebuild or resync of `replicaId` running now. */
  get(replicaId: string): Rebuild | undefined {
    return this.running.get(replicaId);
  }

  all(): Rebuild[] {
    return [...this.running.values()];
  }

  /** `joining` says how the target enters the record (a move's keeps the factor). */
  start(
    kind: RebuildKind,
    target: Omit<ReplicaTarget, "state">,
    options: RebuildOptions,
    joining: AddReplicaOptions = {},
  ): Rebuild {
    if (this.running.has(target.replicaId)) {
      throw new BlockIoError("EINVAL", `replica ${target.replicaId} is already being rebuilt`);
    }
    const rebuild = startRebuild(
      this.rebuildHost(joining),
      kind,
      { ...target, state: "rebuilding" },
      options,
    );
    this.running.set(target.replicaId, rebuild);
    void rebuild.done.then(
      () => this.running.delete(target.replicaId),
      () => this.running.delete(target.replicaId),
    );
    return rebuild;
  }

  /**
   * After a coordinator died, the writes it had in flight (none acknowledged) may have reached
   * only some replicas. The regions any in-sync replica changed since `since` are copied from the
   * read source to the others, while I/O goes on, so the replicas converge on one version of them.
   * Resolves with the bytes copied to each replica; a failure is logged, never thrown.
   */
  async reconcile(since: number): Promise<number> {
    const host = this.host;
    let copied = 0;
    try {
      const epoch = host.epoch();
      const inSync = host.members().filter((member) => member.state === "in-sync");
      const changed = await Promise.all(inSync.map((member) => member.handle.changedRuns(epoch, since)));
      const chunks = chunksOf(mergeRuns(changed.flat()), DEFAULT_CHUNK_BYTES);
      const source = host.readSource();
      for (const target of inSync.filter((member) => member !== source)) {
        for (const chunk of chunks) await this.copyRange(target.replicaId, chunk, "punch");
      }
      copied = chunks.reduce((sum, chunk) => sum + chunk.length, 0);
      if (copied > 0) host.log.info({ since, copiedBytes: copied }, "replicas reconciled after a takeover");
    } catch (error) {
      host.log.error({ err: error, since }, "reconciling the replicas after a takeover failed");
    }
    return copied;
  }

  private rebuildHost(joining: AddReplicaOptions): RebuildHost {
    const host = this.host;
    return {
      volumeId: host.volumeId,
      log: host.log,
      join: (target, kind) => this.join(target, kind, joining),
      copyRange: (replicaId, range, zeros) => this.copyRange(replicaId, range, zeros),
      markInSync: (replicaId) => this.markInSync(replicaId),
      abandon: async (replicaId) => {
        const target = host.members().find((member) => member.replicaId === replicaId);
        if (target !== undefined && target.state === "rebuilding") await host.replicasFailed([target]);
      },
    };
  }

  /**
   * Joins `target` write-only; resolves with the ranges to copy, taken while no write can run.
   * The target is marked rebuilding before anything else changes, so a target whose copy is cut
   * short (by a crash anywhere) is known to need a full resync.
   */
  private join(target: Member, kind: RebuildKind, joining: AddReplicaOptions): Promise<CopyPlan> {
    const host = this.host;
    return host.exclusive("changing-membership", async () => {
      const clash = host
        .members()
        .find((m) => m.replicaId === target.replicaId || m.nodeId === target.nodeId);
      if (clash !== undefined) {
        throw new BlockIoError("EINVAL", `node ${clash.nodeId} already holds replica ${clash.replicaId}`);
      }
      const before = await target.handle.standing();
      if (!before.rebuilding) await target.handle.setRebuilding(before.epoch, true);
      // A returning replica may have missed a resize.
      if (before.sizeBytes < host.sizeBytes()) await target.handle.resize(before.epoch, host.sizeBytes());
      const existing = host.members();
      const placement = { replicaId: target.replicaId, nodeId: target.nodeId };
      await host.changeRecord((expected) => host.membership.addReplica(placement, expected, joining), {
        changed: () => host.addMember(target),
        moves: (expected) => [
          ...existing.map((member) => ({ member, from: expected, trusted: true })),
          { member: target, from: before.epoch, trusted: false },
        ],
      });
      if (!host.members().includes(target))
        throw new RebuildAbortedError(target.replicaId, "it failed to join");
      return kind === "rebuild" ? this.rebuildPlan() : this.resyncPlan(target, before);
    });
  }

  /** An empty target needs the source's allocated data; zeros it would read anyway are skipped. */
  private async rebuildPlan(): Promise<CopyPlan> {
    const host = this.host;
    const runs = await host.readSource().handle.allocatedRuns(host.epoch());
    // Without a map of the source, everything is read and only non-zero chunks written.
    return runs === undefined
      ? { runs: [{ offset: 0, length: host.sizeBytes() }], zeros: "skip" }
      : { runs, zeros: "write" };
  }

  /**
   * A returning target differs from the source only in regions changed since the epoch it left at:
   * by the source since then, or by itself in its last epoch (writes that reached only it). A
   * target still marked rebuilding was cut short mid-copy: everything either ever changed.
   * Zeros are punched, since the target may hold stale data where the source has none.
   */
  private async resyncPlan(target: Member, before: ReplicaStanding): Promise<CopyPlan> {
    const host = this.host;
    const since = before.rebuilding ? 0 : before.epoch;
    const epoch = host.epoch();
    const source = host.readSource().handle;
    try {
      const [theirs, own, allocated] = await Promise.all([
        source.changedRuns(epoch, since),
        target.handle.changedRuns(epoch, since),
        source.allocatedRuns(epoch),
      ]);
      const changed = mergeRuns([...theirs, ...own]);
      if (allocated === undefined) return { runs: changed, zeros: "punch", since };
      // Data moves only where the source holds some; elsewhere the target is only cleared.
      const { inside, outside } = splitRuns(changed, allocated);
      return { runs: inside, emptyRuns: outside, zeros: "punch", since };
    } catch (error) {
      if (classifyReplicaError(error) === "fenced") throw host.fence(error);
      host.log.warn(
        { err: error, replica: target.replicaId },
        "resync: no dirty-region map; copying everything",
      );
      return { runs: [{ offset: 0, length: host.sizeBytes() }], zeros: "punch", since };
    }
  }

  /**
   * Copies one range from an in-sync replica to the rebuild target under the range lock, so no
   * client write to the range is in flight meanwhile and none starts until the copy is written.
   * A source failing is removed and the copy retried from another; the target failing ends the
   * rebuild (it is removed like any failed replica).
   */
  private async copyRange(replicaId: string, range: ByteRange, zeros: ZeroChunks): Promise<void> {
    const host = this.host;
    const lock = await host.locks.acquire(range.offset, range.offset + range.length - 1);
    try {
      for (;;) {
        const target = host.members().find((member) => member.replicaId === replicaId);
        if (target === undefined) throw new RebuildAbortedError(replicaId, "it left the replica set");
        await host.enter();
        const epoch = host.epoch();
        const source = host.readSource();
        let failing = source;
        let data: Buffer | undefined;
        let failure: unknown;
        try {
          data = await source.handle.read(epoch, range.offset, range.length);
          failing = target;
          if (zeros === "write" || !isZeros(data)) {
            await target.handle.write(epoch, range.offset, data, { fua: false });
          } else if (zeros === "punch") {
            await target.handle.writeZeroes(epoch, range.offset, range.length, {
              fua: false,
              mayPunch: true,
            });
          }
          return;
        } catch (error) {
          failure = error;
        } finally {
          host.leave();
          if (data !== undefined) returnIoBuffer(data);
        }
        const kind = classifyReplicaError(failure);
        if (kind === "fenced") throw host.fence(failure);
        if (kind === "client") throw failure;
        await host.replicasFailed([failing]);
      }
    } finally {
      host.locks.release(lock);
    }
  }

  /**
   * Flushes the target and clears its rebuild mark, records it in sync (CAS) and moves every
   * replica to the new epoch.
   */
  private markInSync(replicaId: string): Promise<void> {
    const host = this.host;
    return host.exclusive("changing-membership", async () => {
      const target = host.members().find((member) => member.replicaId === replicaId);
      if (target === undefined) throw new RebuildAbortedError(replicaId, "it left the replica set");
      try {
        await target.handle.flush(host.epoch());
        await target.handle.setRebuilding(host.epoch(), false);
      } catch (error) {
        if (classifyReplicaError(error) === "fenced") throw host.fence(error);
        await host.removeLocked([target]);
        throw new RebuildAbortedError(replicaId, "its final flush or clearing its rebuild mark failed");
      }
      await host.changeRecord((expected) => host.membership.markInSync(replicaId, expected), {
        changed: () => {
          target.state = "in-sync";
        },
      });
    });
  }
}

const ZEROS = Buffer.alloc(1024 * 1024);

function isZeros(data: Buffer): boolean {
  for (let at = 0; at < data.length; at += ZEROS.length) {
    const piece = data.subarray(at, Math.min(data.length, at + ZEROS.length));
    if (!piece.equals(ZEROS.subarray(0, piece.length))) return false;
  }
  return true;
}
