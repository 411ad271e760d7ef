/**
 * Rebuild and resync: bring a replica into a volume while I/O goes on (DESIGN: Data path).
 *
 * 1. Join: the target is marked rebuilding (durable: a crash before the end leaves it known to be
 *    incomplete), then the coordinator adds it write-only (state rebuilding, one CAS + SET_EPOCH
 *    on all) and, while no write can run, plans the copy. From then on every live write reaches the
 *    target too, so the planned ranges are all that can be missing or stale on it.
 *    - rebuild (a new, empty target): the source's allocated runs.
 *    - resync (a target that left the set with its data): the regions changed since the epoch it
 *      left at, on the source or on the target (dirty-region tracking, agent/store/region-epochs.ts).
 * 2. Copy: the ranges, cut into chunks, are read from an in-sync replica and written to the target,
 *    each chunk under the coordinator's range lock: a client write to the chunk waits for the
 *    copy, and the copy waits for client writes already in flight there, so an older copy never
 *    lands over a newer write.
 * 3. In sync: the target is flushed, its mark cleared, it is recorded in sync (CAS) and every
 *    replica moves to the new epoch.
 */

import type { ByteRange } from "../../block-device.js";
import type { Logger } from "../../log.js";
import type { ReplicaTarget } from "../replica-handle.js";
import { copiedBytes, rebuildProgress } from "./metrics.js";

/** Big enough that per-request costs vanish next to the copy, small enough to stall a client write briefly. */
export const DEFAULT_CHUNK_BYTES = 1024 * 1024;
/** Chunks copied at once: keeps both the source read and the network write busy. */
export const DEFAULT_COPY_CONCURRENCY = 4;

/** rebuild: a new, empty replica; resync: a replica that comes back with (older) data. */
export type RebuildKind = "rebuild" | "resync";

/**
 * What to do with a chunk that reads as zeros: write it like any data, skip it (the target holds
 * nothing there: it is new), or punch it (the target may hold stale data there).
 */
export type ZeroChunks = "write" | "skip" | "punch";

/** What join planned: the ranges to copy and how zero chunks go. */
export interface CopyPlan {
  runs: ByteRange[];
  zeros: ZeroChunks;
  /**
   * resync: changed ranges where the source holds no data. The target may hold stale data there,
   * so they are cleared too, but no data moves: they are not part of the progress figures.
   */
  emptyRuns?: ByteRange[];
  /** resync: the epoch the changes are counted from (0 when the target was cut short mid-copy). */
  since?: number;
}

export interface RebuildOptions {
  chunkBytes?: number;
  concurrency?: number;
}

/** What the rebuild needs from the coordinator (VolumeCoordinator provides it). */
export interface RebuildHost {
  readonly volumeId: string;
  readonly log: Logger;
  /** Adds the target as a rebuilding replica and plans what to copy to it. */
  join(target: ReplicaTarget, kind: RebuildKind): Promise<CopyPlan>;
  copyRange(replicaId: string, range: ByteRange, zeros: ZeroChunks): Promise<void>;
  markInSync(replicaId: string): Promise<void>;
  /** Removes a target whose rebuild failed from the set, if it is still there. */
  abandon(replicaId: string): Promise<void>;
}

export type RebuildPhase = "joining" | "copying" | "marking-in-sync" | "in-sync" | "failed";

export interface RebuildProgress {
  kind: RebuildKind;
  phase: RebuildPhase;
  /** Bytes of the runs copied so far. */
  copiedBytes: number;
  /**
   * Bytes of data the copy moves: the source's allocated data (rebuild), or the part of it in the
   * changed regions (resync); the volume size when the source cannot say what it holds.
   */
  totalBytes: number;
}

export interface RebuildResult {
  copiedBytes: number;
  durationMs: number;
  /** Copy rate, bytes per second, over the copy phase only. */
  bytesPerSecond: number;
}

/** The rebuild stopped because its target is no longer in the set (failed, or never joined). */
export class RebuildAbortedError extends Error {
  constructor(
    readonly replicaId: string,
    why: string,
  ) {
    super(`rebuild of replica ${replicaId} aborted: ${why}`);
    this.name = "RebuildAbortedError";
  }
}

export class Rebuild {
  private phase: RebuildPhase = "joining";
  private copiedBytes = 0;
  private totalBytes = 0;
  readonly done: Promise<RebuildResult>;

  constructor(
    private readonly host: RebuildHost,
    readonly kind: RebuildKind,
    readonly target: ReplicaTarget,
    private readonly options: Required<RebuildOptions>,
  ) {
    this.done = this.run();
    // The caller may only poll progress; a failure is logged either way.
    this.done.catch(() => {});
  }

  get progress(): RebuildProgress {
    return { kind: this.kind, phase: this.phase, copiedBytes: this.copiedBytes, totalBytes: this.totalBytes };
  }

  private async run(): Promise<RebuildResult> {
    const { volumeId } = this.host;
    const replicaId = this.target.replicaId;
    const labels = { volume: volumeId, replica: replicaId };
    const log = this.host.log.child({ replica: replicaId });
    try {
      const { runs, zeros, since, emptyRuns = [] } = await this.host.join(this.target, this.kind);
      this.phase = "copying";
      this.totalBytes = runs.reduce((sum, run) => sum + run.length, 0);
      rebuildProgress.set(labels, 0);
      log.info(
        { kind: this.kind, totalBytes: this.totalBytes, zeros, since },
        `${this.kind}: joined, copying`,
      );
      const started = performance.now();
      await this.copy(chunksOf(runs, this.options.chunkBytes), zeros, labels);
      await this.copy(chunksOf(emptyRuns, this.options.chunkBytes), "punch");
      const copyMs = performance.now() - started;
      this.phase = "marking-in-sync";
      await this.host.markInSync(replicaId);
      this.phase = "in-sync";
      const result = {
        copiedBytes: this.copiedBytes,
        durationMs: copyMs,
        bytesPerSecond: copyMs > 0 ? (this.copiedBytes * 1000) / copyMs : 0,
      };
      log.info(
        { ...result, megabytesPerSecond: Math.round(result.bytesPerSecond / 1e6) },
        `${this.kind}: replica in sync`,
      );
      return result;
    } catch (error) {
      this.phase = "failed";
      log.error({ err: error, copiedBytes: this.copiedBytes }, `${this.kind} failed`);
      await this.host.abandon(replicaId).catch(() => {});
      throw error;
    } finally {
      rebuildProgress.remove(labels);
    }
  }

  /**
   * Copies the chunks with a few workers; the first failure stops them all. With `labels` the
   * chunks are data and count in the progress; without, they only clear the target.
   */
  private async copy(chunks: ByteRange[], zeros: ZeroChunks, labels?: { volume: string; replica: string }) {
    let next = 0;
    let failure: unknown;
    const worker = async () => {
      while (failure === undefined && next < chunks.length) {
        const chunk = chunks[next++]!;
        try {
          await this.host.copyRange(this.target.replicaId, chunk, zeros);
        } catch (error) {
          failure ??= error;
          return;
        }
        if (labels === undefined) continue;
        this.copiedBytes += chunk.length;
        copiedBytes.inc({ volume: labels.volume, kind: this.kind }, chunk.length);
        rebuildProgress.set(labels, this.copiedBytes / this.totalBytes);
      }
    };
    await Promise.all(Array.from({ length: this.options.concurrency }, worker));
    if (failure !== undefined) throw failure;
  }
}

export function startRebuild(
  host: RebuildHost,
  kind: RebuildKind,
  target: ReplicaTarget,
  options: RebuildOptions = {},
): Rebuild {
  return new Rebuild(host, kind, target, {
    chunkBytes: options.chunkBytes ?? DEFAULT_CHUNK_BYTES,
    concurrency: options.concurrency ?? DEFAULT_COPY_CONCURRENCY,
  });
}

/** Cuts runs into pieces of at most `chunkBytes`, in order. */
export function chunksOf(runs: readonly ByteRange[], chunkBytes: number): ByteRange[] {
  const chunks: ByteRange[] = [];
  for (const run of runs) {
    for (let offset = run.offset; offset < run.offset + run.length; offset += chunkBytes) {
      chunks.push({ offset, length: Math.min(chunkBytes, run.offset + run.length - offset) });
    }
  }
  return chunks;
}

/** Sorts ranges and merges those that overlap or touch. */
export function mergeRuns(runs: readonly ByteRange[]): ByteRange[] {
  const merged: ByteRange[] = [];
  for (const run of [...runs].sort((a, b) => a.offset - b.offset)) {
    const last = merged[merged.length - 1];
    if (last !== undefined && run.offset <= last.offset + last.length) {
      last.length = Math.max(last.length, run.offset + run.length - last.offset);
    } else {
      merged.push({ ...run });
    }
  }
  return merged;
}

/**
 * Splits sorted, disjoint `runs` by sorted, disjoint `by`: the parts inside `by` and the parts
 * outside it, each in order.
 */
export function splitRuns(
  runs: readonly ByteRange[],
  by: readonly ByteRange[],
): { inside: ByteRange[]; outside: ByteRange[] } {
  const inside: ByteRange[] = [];
  const outside: ByteRange[] = [];
  const add = (to: ByteRange[], start: number, end: number) => {
    if (end > start) to.push({ offset: start, length: end - start });
  };
  let next = 0;
  for (const run of runs) {
    const end = run.offset + run.length;
    let at = run.offset;
    while (next < by.length && by[next]!.offset + by[next]!.length <= at) next++;
    for (let i = next; i < by.length && by[i]!.offset < end; i++) {
      const from = Math.max(at, by[i]!.offset);
      const to = Math.min(end, by[i]!.offset + by[i]!.length);
      add(outside, at, from);
      add(inside, from, to);
      at = to;
    }
    add(outside, at, end);
  }
  return { inside, outside };
}
