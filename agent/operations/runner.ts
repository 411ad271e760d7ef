import { randomUUID } from "node:crypto";
import { setTimeout as sleep } from "node:timers/promises";
import { millisecondsFromEnv } from "../../core/env-settings.js";
import type { OperationOutcome, OperationResult, OperationStore } from "../../core/state/operations.js";
import type { OperationKind, OperationProgress, OperationRecord } from "../../core/state/records.js";
import type { Logger } from "../log.js";
import { nextDelay } from "../replication/backoff.js";

/** What an executor gets besides its operation: a way to say how far it has come, and when to stop. */
export interface OperationContext {
  /** Cheap to call as often as the work likes: the runner writes the latest at most every interval. */
  progress(bytesDone: number, bytesTotal: number): void;
  /** Something the caller should know once it succeeds, e.g. replicas placed in one zone. */
  warn(warning: string): void;
  /** Aborted when the operation is cancelled, is failed by someone else, or the agent stops. */
  signal: AbortSignal;
}

/**
 * Does one kind of operation. It resolves when the work is done, with what it made if that is
 * worth recording, and rejects with an error whose message says what went wrong (recorded as the
 * operation's error); on an aborted signal it stops soon and rejects.
 */
export type OperationExecutor = (operation: OperationRecord, context: OperationContext) => Promise<Made>;

// biome-ignore lint/suspicious/noConfusingVoidType: most executors make nothing worth recording; they are plain async functions, whose type is Promise<void>.
type Made = OperationResult | void;

export type OperationExecutors = Partial<Record<OperationKind, OperationExecutor>>;

export interface OperationRunnerOptions {
  operations: OperationStore;
  /** The node whose queue this runner serves. */
  node: string;
  executors: OperationExecutors;
  log: Logger;
  /** How often the node's queue is read: how soon a new operation starts, and a cancel is seen. */
  pollIntervalMs?: number;
  /** The least time between two progress writes of one operation. */
  progressIntervalMs?: number;
  /** Operations run at once; more wait, pending, in the queue. */
  maxConcurrent?: number;
  clock?: () => Date;
}

/** STRATA_OPERATION_POLL_MS shortens the poll for tests; a second keeps a start within "a couple of seconds". */
const DEFAULT_POLL_INTERVAL_MS = 1_000;
const DEFAULT_PROGRESS_INTERVAL_MS = 2_000;
const DEFAULT_MAX_CONCURRENT = 4;
/** An executor that ignores its aborted signal must not hold the agent's shutdown for longer. */
const STOP_GRACE_MS = 5_000;

export const RESTARTED_WHILE_RUNNING = "the agent restarted while it ran";

/** One operation this runner is running. */
interface Run {
  operation: OperationRecord;
  controller: AbortController;
  /** The caller asked to cancel it. */
  cancelled: boolean;
  /** It was ended for this runner (failed as stalled): nothing more is written. */
  lost: boolean;
  reported: { bytesDone: number; bytesTotal: number } | undefined;
  written: { bytesDone: number; atMs: number };
  writing: boolean;
  done: Promise<void>;
}

/**
 * Runs the operations queued for one node: polls the queue, claims pending work with a conditional
 * write (so of two runners only one runs it), runs it with the executor of its kind, writes its
 * progress, and records how it ended.
 *
 * An operation this node had running when its agent died is failed at the next start, with
 * RESTARTED_WHILE_RUNNING, rather than run again: an executor cannot know how far a dead run got,
 * and every caller (the CLI, a workflow) already handles failure by planning again.
 */
export class OperationRunner {
  /** Claims are made under this id, so a later agent on the node can tell them from its own. */
  readonly runnerId = randomUUID();
  private readonly runs = new Map<string, Run>();
  private readonly pollIntervalMs: number;
  private readonly progressIntervalMs: number;
  private readonly maxConcurrent: number;
  private readonly clock: () => Date;
  private readonly log: Logger;
  private stopping = false;
  private timer: NodeJS.Timeout | undefined;
  private polling: Promise<void> | undefined;
  private retryDelayMs: number | undefined;

  constructor(private readonly options: OperationRunnerOptions) {
    this.pollIntervalMs =
      options.pollIntervalMs ?? millisecondsFromEnv("STRATA_OPERATION_POLL_MS", DEFAULT_POLL_INTERVAL_MS);
    this.progressIntervalMs = options.progressIntervalMs ?? DEFAULT_PROGRESS_INTERVAL_MS;
    this.maxConcurrent = options.maxConcurrent ?? DEFAULT_MAX_CONCURRENT;
    this.clock = options.clock ?? (() => new Date());
    this.log = options.log.child({ component: "operations" });
  }

  /** Fails what a previous agent left running here, then polls until stopped (in the background). */
  start(): void {
    this.polling = this.recover().then(() => this.poll());
  }

  /** Stops polling, aborts the work in hand, and waits (briefly) for it to record how it ended. */
  async stop(): Promise<void> {
    this.stopping = true;
    clearTimeout(this.timer);
    await this.polling;
    const stopped = new Error(`the agent on ${this.options.node} stopped while it ran`);
    for (const run of this.runs.values()) run.controller.abort(stopped);
    await Promise.race([Promise.all([...this.runs.values()].map((run) => run.done)), sleep(STOP_GRACE_MS)]);
  }

  private async recover(): Promise<void> {
    const { operations, node } = this.options;
    for (;;) {
      try {
        for (const operation of await operations.unfinished(node)) {
          if (operation.state !== "running" || operation.runnerId === this.runnerId) continue;
          await operations.fail(operation, RESTARTED_WHILE_RUNNING);
          this.log.warn({ operation: operation.id, kind: operation.kind }, RESTARTED_WHILE_RUNNING);
        }
        return;
      } catch (error) {
        if (this.stopping) return;
        await sleep(this.backoff(error, "recovering operations"));
      }
    }
  }

  private async poll(): Promise<void> {
    if (this.stopping) return;
    let delayMs = this.pollIntervalMs;
    try {
      await this.pollOnce();
      this.retryDelayMs = undefined;
    } catch (error) {
      delayMs = this.backoff(error, "polling for operations");
    }
    if (this.stopping) return;
    this.timer = setTimeout(() => {
      this.polling = this.poll();
    }, delayMs);
  }

  private async pollOnce(): Promise<void> {
    const { operations, node } = this.options;
    const unfinished = await operations.unfinished(node);
    // Out of the queue while it runs here: someone else ended it (failed it as stalled).
    const queued = new Set(unfinished.map((operation) => operation.id));
    for (const run of this.runs.values()) if (!queued.has(run.operation.id)) this.lose(run);
    for (const operation of unfinished) {
      const run = this.runs.get(operation.id);
      if (run !== undefined) {
        if (operation.cancelRequested) this.cancel(run);
        continue;
      }
      if (operation.state !== "pending" || this.runs.size >= this.maxConcurrent || this.stopping) continue;
      const claimed = await operations.claim(operation.id, node, this.runnerId);
      if (claimed !== undefined) this.launch(claimed);
    }
  }

  private launch(operation: OperationRecord): void {
    const run: Run = {
      operation,
      controller: new AbortController(),
      cancelled: false,
      lost: false,
      reported: undefined,
      written: { bytesDone: 0, atMs: this.clock().getTime() },
      writing: false,
      done: Promise.resolve(),
    };
    this.runs.set(operation.id, run);
    this.log.info({ operation: operation.id, kind: operation.kind, volume: operation.volumeName }, "started");
    run.done = this.execute(run).finally(() => this.runs.delete(operation.id));
  }

  private async execute(run: Run): Promise<void> {
    const { operation, controller } = run;
    const executor = this.options.executors[operation.kind];
    const progressTimer = setInterval(() => void this.writeProgress(run), this.progressIntervalMs);
    let outcome: OperationOutcome;
    try {
      if (executor === undefined) {
        throw new Error(`the agent on ${this.options.node} cannot run ${operation.kind} operations`);
      }
      const warnings: string[] = [];
      const result = await executor(operation, {
        progress: (bytesDone, bytesTotal) => {
          run.reported = { bytesDone, bytesTotal };
        },
        warn: (warning) => warnings.push(warning),
        signal: controller.signal,
      });
      outcome = { state: "succeeded", warnings, ...(result ? { result } : {}) };
    } catch (error) {
      outcome = run.cancelled
        ? { state: "cancelled" }
        : { state: "failed", error: messageOf(controller.signal.aborted ? controller.signal.reason : error) };
    } finally {
      clearInterval(progressTimer);
    }
    if (run.lost) return;
    const progress = run.reported === undefined ? undefined : this.progressRecord(run);
    await this.recordEnd(operation, progress === undefined ? outcome : { ...outcome, progress });
  }

  /** The end must reach the store, or the operation stays running: retried while the agent runs. */
  private async recordEnd(operation: OperationRecord, outcome: OperationOutcome): Promise<void> {
    const context = { operation: operation.id, kind: operation.kind, state: outcome.state };
    for (;;) {
      try {
        const ended = await this.options.operations.finish(operation.id, this.runnerId, outcome);
        if (ended === undefined) this.log.warn(context, "operation was ended elsewhere while it ran");
        else this.log.info({ ...context, error: ended.error ?? undefined }, "ended");
        return;
      } catch (error) {
        // A later start of this node fails the operation if this agent goes first.
        if (this.stopping) return;
        await sleep(this.backoff(error, "recording the end of an operation"));
      }
    }
  }

  private async writeProgress(run: Run): Promise<void> {
    if (run.writing || run.lost || run.reported === undefined) return;
    run.writing = true;
    try {
      const progress = this.progressRecord(run);
      const written = await this.options.operations.reportProgress(run.operation.id, this.runnerId, progress);
      run.written = { bytesDone: progress.bytesDone, atMs: Date.parse(progress.updatedAt) };
      if (written === undefined) {
        this.lose(run);
      } else if (written.cancelRequested) {
        this.cancel(run);
      }
    } catch (error) {
      this.log.warn({ err: error, operation: run.operation.id }, "could not record progress; will retry");
    } finally {
      run.writing = false;
    }
  }

  /** The latest progress reported, with the rate since the previous write. */
  private progressRecord(run: Run): OperationProgress {
    const now = this.clock();
    const { bytesDone, bytesTotal } = run.reported!;
    const seconds = (now.getTime() - run.written.atMs) / 1000;
    const copied = Math.max(0, bytesDone - run.written.bytesDone);
    const bytesPerSecond = seconds > 0 ? Math.round(copied / seconds) : 0;
    return { bytesDone, bytesTotal, bytesPerSecond, updatedAt: now.toISOString() };
  }

  /** The run's own end may be on its way to the store already: the store keeps whichever came first. */
  private lose(run: Run): void {
    if (run.lost) return;
    run.lost = true;
    run.controller.abort(new Error("the operation was ended by someone else while it ran"));
  }

  private cancel(run: Run): void {
    if (run.cancelled) return;
    run.cancelled = true;
    run.controller.abort(new Error("cancelled"));
  }

  private backoff(error: unknown, doing: string): number {
    this.retryDelayMs = nextDelay(this.retryDelayMs);
    this.log.warn({ err: error, retryInMs: this.retryDelayMs }, `state store failed while ${doing}`);
    return this.retryDelayMs;
  }
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
