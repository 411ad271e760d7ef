/**
 * Liveness from heartbeats: the one rule by which placement, the agents' repair decisions,
 * `cluster status` and (soon) the workflows' health sweep call a node down.
 */
import { millisecondsFromEnv } from "./env-settings.js";
import type { NodeRecord } from "./state/records.js";

/**
 * How often a node tells the store it is alive. Two seconds lets the down verdict below wait for
 * several missed beats (one slow write on a busy machine must not make a live node look dead) and
 * still notice a dead node within seconds; one small update per node every two seconds is nothing
 * for the NODES partition.
 */
export const HEARTBEAT_INTERVAL_MS = 2_000;

/** A node whose last heartbeat is older than this is down: five missed beats. */
export const HEARTBEAT_TIMEOUT_MS = 10_000;

/** The down verdict's timeout; STRATA_HEARTBEAT_TIMEOUT_MS shortens it for tests and demos. */
export function heartbeatTimeoutMs(env: NodeJS.ProcessEnv = process.env): number {
  return millisecondsFromEnv("STRATA_HEARTBEAT_TIMEOUT_MS", HEARTBEAT_TIMEOUT_MS, env);
}

/** The moment a verdict is taken at, and the heartbeat timeout it applies. */
export interface LivenessClock {
  heartbeatTimeoutMs: number;
  now: Date;
}

/**
 * Why `node` counts as down ("down", "no heartbeat for 12s"), or undefined when it is up. A node
 * marked up whose heartbeat is stale is down: a crashed agent never marks itself down.
 */
export function whyDown(
  node: Pick<NodeRecord, "state" | "lastHeartbeat">,
  clock: LivenessClock,
): string | undefined {
  if (node.state === "down") return "down";
  const silentMs = clock.now.getTime() - Date.parse(node.lastHeartbeat);
  return silentMs > clock.heartbeatTimeoutMs ? `no heartbeat for ${Math.round(silentMs / 1000)}s` : undefined;
}
