import { createHash } from "node:crypto";
import { type LivenessClock, whyDown } from "../../core/liveness.js";
import type { NodeRecord } from "../../core/state/records.js";

/** The nodes that can run a volume's operation now: up with a fresh heartbeat, and not excluded. */
export function liveNodes(
  nodes: readonly NodeRecord[],
  liveness: LivenessClock,
  excluded: ReadonlySet<string> = new Set(),
): Set<string> {
  return new Set(
    nodes
      .filter((node) => !excluded.has(node.id) && whyDown(node, liveness) === undefined)
      .map((node) => node.id),
  );
}

/**
 * The node to run a volume's operation when the volume is attached nowhere: a live node, those
 * holding one of `preferred` (the volume's replicas, read locally) first, chosen by a hash of `key`
 * so that the volumes of one run spread over the nodes and a retried task chooses the same one.
 * Undefined when no node is live.
 */
export function liveNodeFor(
  nodes: readonly NodeRecord[],
  liveness: LivenessClock,
  key: string,
  preferred: readonly string[] = [],
): string | undefined {
  const live = [...liveNodes(nodes, liveness)].sort();
  const holding = live.filter((id) => preferred.includes(id));
  const candidates = holding.length > 0 ? holding : live;
  if (candidates.length === 0) return undefined;
  const spread = createHash("sha256").update(key).digest().readUInt32BE(0);
  return candidates[spread % candidates.length];
}
