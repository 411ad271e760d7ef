import { setTimeout as sleep } from "node:timers/promises";
import { HEARTBEAT_INTERVAL_MS, heartbeatTimeoutMs } from "../core/liveness.js";
import type { Labels } from "../core/model.js";
import { DriveSetHeldError, InstanceUnknownError, RecordNotFoundError } from "../core/state/errors.js";
import type { NodeAddresses, NodePool } from "../core/state/records.js";
import { StateStore } from "../core/state/store.js";
import type { Logger } from "./log.js";

/** An unreachable store is retried after 1 s, 2 s, 4 s ... 30 s, so a long outage costs little. */
const FIRST_RETRY_MS = 1_000;
const MAX_RETRY_MS = 30_000;
/** A blackholed endpoint must not hold the heartbeat loop for the SDK's default (no) timeout. */
export const STORE_REQUEST_TIMEOUT_MS = 5_000;
/** Marking the node down is a courtesy to the health sweep: it must not hold a shutdown for long. */
const MARK_DOWN_TIMEOUT_MS = 3_000;

export interface MembershipOptions {
  tableName: string;
  node: {
    id: string;
    zone: string;
    addresses: NodeAddresses;
    labels?: Labels;
    /** The EC2 instance this agent runs on (locally, the local cloud's instance), if known. */
    instanceId?: string;
  };
  /** The pool's space now (the agent's PoolUsage fits); called for every registration and heartbeat. */
  pool: () => Promise<NodePool>;
  log: Logger;
  /**
   * This agent must not serve the node: it was claimed by an agent on another instance (its drive
   * set moved there; DriveSetHeldError), or its record names an instance and this agent names none,
   * so it cannot tell it is not a second agent for that drive set (InstanceUnknownError). Heartbeats
   * stop before this is called.
   */
  onRefused?: (error: DriveSetHeldError | InstanceUnknownError) => void;
}

/**
 * The node's presence in the cluster-state store: registers it (state up), heartbeats with the
 * pool's free space, and marks it down on a clean shutdown. The store is never on the data path
 * here: when it cannot be reached the agent logs, keeps serving local I/O, and retries with backoff.
 * The endpoint, region and credentials come from the environment only (AWS_ENDPOINT_URL_DYNAMODB,
 * AWS_REGION, ...), like every AWS client of Strata.
 */
export class NodeMembership {
  private readonly store: StateStore;
  /** This life of the node (see NodeRecord.registeredAt): kept when a lost record is written again. */
  private readonly registeredAt = new Date().toISOString();
  private registered = false;
  private failures = 0;
  private stopped = false;
  private timer: NodeJS.Timeout | undefined;
  private beating: Promise<void> | undefined;
  /** The first registration attempt, begun at start (a beat never rejects: it logs and retries). */
  private readonly firstAttempt: Promise<void>;

  private constructor(private readonly options: MembershipOptions) {
    this.store = new StateStore({ tableName: options.tableName, requestTimeoutMs: STORE_REQUEST_TIMEOUT_MS });
    this.firstAttempt = this.beatNow();
  }

  /** Starts registering in the background: the agent serves whether or not the store answers. */
  static start(options: MembershipOptions): NodeMembership {
    return new NodeMembership(options);
  }

  /**
   * Settles once the first registration was tried, whatever its outcome, or after one request's
   * timeout (a blackholed store must not hold the agent's start): an agent that says it is ready
   * only after this is one placement can count on at once whenever the store answers, and still
   * serves local I/O when it does not.
   */
  async registrationTried(): Promise<void> {
    await Promise.race([this.firstAttempt, sleep(STORE_REQUEST_TIMEOUT_MS)]);
  }

  /** Stops heartbeating and marks the node down, waiting at most a few seconds for the store. */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    clearTimeout(this.timer);
    const { log, node } = this.options;
    const markDown = async () => {
      await this.beating;
      await this.store.nodes.setState(node.id, "down");
      log.info({ table: this.options.tableName }, "node marked down in the state store");
    };
    const outcome = await Promise.race([
      markDown().then(
        () => "done",
        (error: unknown) => error,
      ),
      sleep(MARK_DOWN_TIMEOUT_MS, "timed out"),
    ]);
    if (outcome === "timed out")
      log.warn("could not mark the node down: the state store did not answer in time");
    else if (outcome !== "done" && !(outcome instanceof RecordNotFoundError))
      log.warn({ err: outcome }, "could not mark the node down in the state store");
    this.store.close();
  }

  private schedule(delayMs: number): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => void this.beatNow(), delayMs);
  }

  private beatNow(): Promise<void> {
    this.beating = this.beat().finally(() => {
      this.beating = undefined;
    });
    return this.beating;
  }

  private async beat(): Promise<void> {
    const { log, node } = this.options;
    try {
      const pool = await this.options.pool();
      if (this.registered) await this.heartbeat(pool);
      else await this.register(pool);
      if (this.failures > 0) log.info("the state store is reachable again");
      this.failures = 0;
      this.schedule(HEARTBEAT_INTERVAL_MS);
    } catch (error) {
      if (error instanceof DriveSetHeldError && this.registered) {
        log.error(
          { err: error },
          "this node is served from another instance now; this agent stops serving it",
        );
        this.stopped = true;
        this.options.onRefused?.(error);
        return;
      }
      if (error instanceof InstanceUnknownError) {
        // No retry helps: the record keeps naming its instance, and this agent still names none.
        log.error(
          { err: error },
          `${error.message}; set STRATA_INSTANCE_ID to the instance this agent runs on, or give it another --node-id. This agent stops`,
        );
        this.stopped = true;
        this.options.onRefused?.(error);
        return;
      }
      const retryMs = Math.min(FIRST_RETRY_MS * 2 ** this.failures, MAX_RETRY_MS);
      this.failures++;
      if (error instanceof DriveSetHeldError) {
        // Its previous agent (on the lost instance) heartbeated moments ago: the claim goes through
        // once that heartbeat is stale, or once node-loss has fenced the node.
        log.warn(
          { err: error, retryMs },
          "waiting for the node's previous agent to be gone before serving it",
        );
        this.schedule(retryMs);
        return;
      }
      log.warn(
        { err: error, node: node.id, attempt: this.failures, retryMs },
        `cannot reach the state store (${this.registered ? "heartbeat" : "registration"}); local I/O goes on, retrying`,
      );
      this.schedule(retryMs);
    }
  }

  private async register(pool: NodePool): Promise<void> {
    const { node, log } = this.options;
    await this.store.nodes.register(
      {
        id: node.id,
        zone: node.zone,
        ...(node.instanceId === undefined ? {} : { instanceId: node.instanceId }),
        addresses: node.addresses,
        pool,
        labels: node.labels ?? {},
        state: "up",
        lastHeartbeat: new Date().toISOString(),
        registeredAt: this.registeredAt,
      },
      heartbeatTimeoutMs(),
    );
    this.registered = true;
    log.info(
      { table: this.options.tableName, addresses: node.addresses },
      "node registered in the state store",
    );
  }

  private async heartbeat(pool: NodePool): Promise<void> {
    try {
      const { freeBytes, provisionedBytes } = pool;
      const { instanceId } = this.options.node;
      const state = await this.store.nodes.heartbeat(this.options.node.id, {
        freeBytes,
        ...(provisionedBytes === undefined ? {} : { provisionedBytes }),
        ...(instanceId === undefined ? {} : { instanceId }),
      });
      if (state === "down") {
        // Fenced as lost while this agent still serves the node (a partition, a store outage): its
        // replicas were failed and its coordinators fenced by epoch, so saying it is up again is
        // safe, and lets placement, the repairs and the sweep count on it.
        this.options.log.warn("the node was marked down while this agent serves it; registering it again");
        await this.register(pool);
      }
    } catch (error) {
      if (!(error instanceof RecordNotFoundError)) throw error;
      // The record is gone (a wiped or recreated table): this node is still here, so say so again.
      this.options.log.warn("the node's record is missing from the state store; registering again");
      await this.register(pool);
    }
  }
}
