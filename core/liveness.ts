/**
 * Liveness from heartbeats: the one rule by which placement, the agents' repair decisions,
 * `cluster status` and (soon) the workflows' health sweep call a node down.
 */
import { millisecondsFromEnv } from "./env-settings.js";
import type { NodeRecord } from "./state/records.js";

/** What whyDown answers for a node its agent marked down on the way out (a clean stop) or node-loss fenced. */
export const MARKED_DOWN = "down";

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
  if (node.state === "down") return MARKED_DOWN;
  const silentMs = clock.now.getTime() - Date.parse(node.lastHeartbeat);
  return silentMs > clock.heartbeatTimeoutMs ? `no heartbeat for ${Math.round(silentMs / 1000)}s` : undefined;
}

/**
 * A zone is offline when more than half of its counted nodes are, and it has at least this many: the
 * loss of a zone's only node is a node loss (node-loss repairs it), and one silent node of a pair is
 * not enough to call a whole zone down.
 */
export const MIN_NODES_FOR_ZONE_VERDICT = 2;

/**
 * How far apart in time the nodes of one failing zone go silent: 3 heartbeat timeouts. az-failure
 * waits this long after a report for the zone's nodes to go silent, and the zone verdict does not
 * count a node found offline this long before the zone's failure began.
 */
export const zoneSettleMs = (heartbeatTimeoutMs: number) =>
  millisecondsFromEnv("STRATA_ZONE_SETTLE_MS", 3 * heartbeatTimeoutMs);

export interface ZoneVerdict {
  offline: boolean;
  /** The zone's nodes the majority rule counts (see zoneVerdict). */
  counted: NodeRecord[];
  /** Those of them that are down now, each with why. */
  down: { node: NodeRecord; why: string }[];
}

/**
 * The majority rule over one zone's nodes. A node the health sweep found offline (`offlineSince`,
 * from its verdicts) a settle window before the zone began failing (`failingSince`: when the zone
 * was found offline, else now) was lost on its own, and node-loss took care of it: it is not
 * counted, or stopping the one healthy node of a zone whose other node was lost long ago would
 * read as the whole zone failing. The sweep's own record is the clock here, not the heartbeat, so a
 * sweep that runs late still sees nodes that went silent together as one zone.
 */
export function zoneVerdict(
  members: readonly NodeRecord[],
  clock: LivenessClock,
  offlineSince: (nodeId: string) => string | undefined,
  failingSince: Date = clock.now,
): ZoneVerdict {
  const lostBefore = failingSince.getTime() - zoneSettleMs(clock.heartbeatTimeoutMs);
  const counted: NodeRecord[] = [];
  const down: ZoneVerdict["down"] = [];
  for (const node of members) {
    const why = whyDown(node, clock);
    const since = offlineSince(node.id);
    if (why !== undefined && since !== undefined && Date.parse(since) < lostBefore) continue;
    counted.push(node);
    if (why !== undefined) down.push({ node, why });
  }
  const offline = counted.length >= MIN_NODES_FOR_ZONE_VERDICT && down.length * 2 > counted.length;
  return { offline, counted, down };
}
