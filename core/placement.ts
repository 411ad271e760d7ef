import { StrataError } from "./errors.js";
import { whyDown } from "./liveness.js";
import type { Labels, Replica } from "./model.js";
import type { NodePool, NodeRecord, VolumeRecord } from "./state/records.js";
import { formatSize } from "./units.js";

/**
 * Replica placement: pure functions from what the state store says about the cluster to a choice of
 * nodes, with the reasons for it. The rules, in order:
 *
 * 1. Distinct nodes, always (DESIGN.md invariant 1); a node already holding a replica is never chosen.
 * 2. Distinct zones whenever enough zones have a qualifying node; otherwise the replicas share zones
 *    and the placement says so in a warning.
 * 3. Among the rest, the node asking first (the volume is most likely attached there), then most
 *    free space, then fewest replicas (load), then node id so the choice is deterministic.
 *
 * A node qualifies when it is up with a fresh heartbeat, is in a zone not marked unavailable, carries every label of the volume's node
 * selector, and has room for the volume (see whyNoRoom). Volumes are thin, so room is a promise
 * kept within a limit rather than a reservation, one rule for every replication factor.
 */

export type PlacementNode = Pick<NodeRecord, "id" | "zone" | "state" | "lastHeartbeat" | "labels" | "pool">;

export interface ClusterView {
  nodes: readonly PlacementNode[];
  /** Replicas each node holds now (see countReplicas); nodes missing from the map hold none. */
  replicaCounts: ReadonlyMap<string, number>;
  /** A node whose last heartbeat is older than this is treated as down, whatever its state says. */
  heartbeatTimeoutMs: number;
  now: Date;
  /** How far thin volumes may over-commit a node (see whyNoRoom); absent: overProvisioningPercent(). */
  overProvisioningPercent?: number;
  /** The node asking: chosen first when it qualifies, since the volume is most likely used there. */
  preferredNode?: string;
  /** Zones marked unavailable (ZoneRecord): their nodes take no new replica. */
  unavailableZones?: ReadonlySet<string>;
}

/** Like Longhorn's storage-over-provisioning-percentage default: promise up to twice the capacity. */
export const DEFAULT_OVERPROVISIONING_PERCENT = 200;
/** A node with less free space than this share of its capacity takes no new replica, however thin. */
export const MIN_FREE_PERCENT = 5;

/** The over-provisioning limit: $STRATA_OVERPROVISIONING_PERCENT, else the default. */
export function overProvisioningPercent(env: NodeJS.ProcessEnv = process.env): number {
  const text = env.STRATA_OVERPROVISIONING_PERCENT;
  if (text === undefined || text === "") return DEFAULT_OVERPROVISIONING_PERCENT;
  const percent = Number(text);
  if (!Number.isInteger(percent) || percent <= 0) {
    throw new Error(`STRATA_OVERPROVISIONING_PERCENT must be a whole number above 0, not "${text}"`);
  }
  return percent;
}

/** What room for a new replica is judged on: a node's pool as its record or its agent reports it. */
export type PoolSpace = Pick<
  NodePool,
  "capacityBytes" | "freeBytes" | "provisionedBytes" | "fileSizeLimitBytes"
>;

/**
 * Why a pool has no room for a new replica of `sizeBytes` (empty when it has), the same rule for
 * placement and for the node that creates the replica:
 * - the volume is smaller than the largest file its filesystem allows;
 * - provisioned + size stays within capacity × `percent` / 100 (thin over-commit, bounded);
 * - at least MIN_FREE_PERCENT of the capacity is free, so no replica lands on a nearly full pool.
 */
export function whyNoRoom(pool: PoolSpace, sizeBytes: number, percent: number): string[] {
  const reasons: string[] = [];
  if (pool.fileSizeLimitBytes !== undefined && sizeBytes >= pool.fileSizeLimitBytes) {
    reasons.push(`its filesystem holds only files smaller than ${formatSize(pool.fileSizeLimitBytes)}`);
  }
  const provisioned = pool.provisionedBytes ?? 0;
  const allowed = Math.floor((pool.capacityBytes * percent) / 100);
  if (provisioned + sizeBytes > allowed) {
    reasons.push(
      `${formatSize(provisioned)} provisioned of ${formatSize(allowed)} allowed (${percent}% of ${formatSize(pool.capacityBytes)})`,
    );
  }
  if (pool.freeBytes * 100 < pool.capacityBytes * MIN_FREE_PERCENT)
    reasons.push(`${formatSize(pool.freeBytes)} free`);
  return reasons;
}

export interface PlacementRequest {
  sizeBytes: number;
  /** How many replicas to choose. */
  count: number;
  nodeSelector?: Labels;
  /** The volume's current replicas: their nodes are excluded, their zones avoided (unless failed). */
  existing?: readonly Pick<Replica, "node" | "state">[];
}

/** What placement thought of one node: the explanation shown when it cannot place. */
export interface NodeVerdict {
  node: string;
  zone: string;
  qualifies: boolean;
  /** Why it does not qualify, e.g. "down" or "2 GiB free"; empty when it qualifies. */
  reasons: string[];
}

export type Placement =
  | { ok: true; nodes: string[]; warnings: string[]; verdicts: NodeVerdict[] }
  | { ok: false; message: string; verdicts: NodeVerdict[] };

/** Chooses `count` nodes for new replicas of a volume, or explains why it cannot. */
export function placeReplicas(request: PlacementRequest, cluster: ClusterView): Placement {
  const existing = request.existing ?? [];
  const verdicts = cluster.nodes.map((node) => judge(node, request, cluster));
  // A node whose replica of this volume failed may take its replacement (after a 3-node cluster
  // loses a node, the node that comes back is the only place left), but only as a last resort.
  const failedOn = new Set(existing.filter((replica) => replica.state === "failed").map((r) => r.node));
  const qualifying = cluster.nodes
    .filter((_, index) => verdicts[index]!.qualifies)
    .sort(
      (a, b) =>
        Number(failedOn.has(a.id)) - Number(failedOn.has(b.id)) ||
        Number(b.id === cluster.preferredNode) - Number(a.id === cluster.preferredNode) ||
        rank(a, b, cluster.replicaCounts),
    );
  if (qualifying.length < request.count) {
    return { ok: false, message: explainShortage(request, qualifying, verdicts), verdicts };
  }

  const zoneOf = new Map(cluster.nodes.map((node) => [node.id, node.zone]));
  // A failed replica is about to be replaced, so its zone is open to the replacement.
  const holders = existing
    .filter((replica) => replica.state !== "failed" && zoneOf.has(replica.node))
    .map((replica) => ({ id: replica.node, zone: zoneOf.get(replica.node)! }));
  const usedZones = new Set(holders.map((holder) => holder.zone));
  const chosen: PlacementNode[] = [];
  const remaining = [...qualifying];
  while (chosen.length < request.count) {
    // The best-ranked node in a zone not used yet; only when there is none, the best-ranked overall.
    const inNewZone = remaining.findIndex((node) => !usedZones.has(node.zone));
    const [pick] = remaining.splice(Math.max(inNewZone, 0), 1);
    chosen.push(pick!);
    usedZones.add(pick!.zone);
  }

  const availableZones = new Set([...holders, ...qualifying].map((node) => node.zone));
  const warnings = zoneSharingWarning([...holders, ...chosen], chosen, availableZones);
  return { ok: true, nodes: chosen.map((node) => node.id), warnings, verdicts };
}

/** The replicas of a new volume. */
export function placeVolume(
  volume: Pick<VolumeRecord, "sizeBytes" | "replicationFactor" | "nodeSelector">,
  cluster: ClusterView,
): Placement {
  const { sizeBytes, replicationFactor, nodeSelector } = volume;
  return placeReplicas({ sizeBytes, count: replicationFactor, nodeSelector }, cluster);
}

/** One more replica for an existing volume (raising its replication factor, or replacing a lost one). */
export function placeAdditionalReplica(
  volume: Pick<VolumeRecord, "sizeBytes" | "nodeSelector" | "replicas">,
  cluster: ClusterView,
): Placement {
  const { sizeBytes, nodeSelector, replicas } = volume;
  return placeReplicas({ sizeBytes, count: 1, nodeSelector, existing: replicas }, cluster);
}

/** The nodes of a successful placement, or a RESOURCE_EXHAUSTED error carrying the explanation. */
export function requirePlacement(placement: Placement): { nodes: string[]; warnings: string[] } {
  if (!placement.ok) throw new StrataError("RESOURCE_EXHAUSTED", placement.message);
  return { nodes: placement.nodes, warnings: placement.warnings };
}

/** Replicas per node across volumes; failed replicas serve no I/O, so they are not load. */
export function countReplicas(volumes: readonly Pick<VolumeRecord, "replicas">[]): Map<string, number> {
  const counts = new Map<string, number>();
  for (const replica of volumes.flatMap((volume) => volume.replicas)) {
    if (replica.state !== "failed") counts.set(replica.node, (counts.get(replica.node) ?? 0) + 1);
  }
  return counts;
}

function judge(node: PlacementNode, request: PlacementRequest, cluster: ClusterView): NodeVerdict {
  const verdict = (reasons: string[]) => ({
    node: node.id,
    zone: node.zone,
    qualifies: reasons.length === 0,
    reasons,
  });
  if (request.existing?.some((replica) => replica.node === node.id && replica.state !== "failed"))
    return verdict(["holds a replica already"]);

  const reasons: string[] = [];
  const down = whyDown(node, cluster);
  if (down !== undefined) reasons.push(down);
  if (cluster.unavailableZones?.has(node.zone)) reasons.push(`zone ${node.zone} is marked unavailable`);
  const mismatched = selectorEntries(request.nodeSelector).filter(
    ([key, value]) => node.labels[key] !== value,
  );
  if (mismatched.length > 0) reasons.push(`lacks label ${formatLabels(mismatched)}`);
  const percent = cluster.overProvisioningPercent ?? overProvisioningPercent();
  reasons.push(...whyNoRoom(node.pool, request.sizeBytes, percent));
  return verdict(reasons);
}

function rank(a: PlacementNode, b: PlacementNode, replicaCounts: ReadonlyMap<string, number>): number {
  return (
    b.pool.freeBytes - a.pool.freeBytes ||
    (replicaCounts.get(a.id) ?? 0) - (replicaCounts.get(b.id) ?? 0) ||
    a.id.localeCompare(b.id)
  );
}

/** e.g. "needs 3 nodes with room for 10 GiB; 2 qualify: node-1 (zone a), node-2 (zone b); node-3: down" */
function explainShortage(
  request: PlacementRequest,
  qualifying: PlacementNode[],
  verdicts: NodeVerdict[],
): string {
  const more = (request.existing?.length ?? 0) > 0 ? " more" : "";
  const noun = request.count === 1 ? "node" : "nodes";
  const selector = selectorEntries(request.nodeSelector);
  const labels = selector.length > 0 ? ` and label ${formatLabels(selector)}` : "";
  const need = `needs ${request.count}${more} ${noun} with room for ${formatSize(request.sizeBytes)}${labels}`;
  const fit = qualifying.map((node) => `${node.id} (zone ${node.zone})`).join(", ");
  const qualify = `${qualifying.length} qualify${fit === "" ? "" : `: ${fit}`}`;
  const rejected = verdicts
    .filter((verdict) => !verdict.qualifies)
    .map((verdict) => `${verdict.node}: ${verdict.reasons.join(", ")}`);
  const nobody = verdicts.length === 0 ? ["no nodes are registered"] : [];
  return [need, qualify, ...rejected, ...nobody].join("; ");
}

/** e.g. "only 2 zones available (a, b); replicas on node-2 and node-3 share zone b" */
function zoneSharingWarning(
  replicas: readonly Pick<PlacementNode, "id" | "zone">[],
  chosen: readonly PlacementNode[],
  availableZones: ReadonlySet<string>,
): string[] {
  const sharedZones = [...new Set(chosen.map((node) => node.zone))].filter(
    (zone) => replicas.filter((node) => node.zone === zone).length > 1,
  );
  if (sharedZones.length === 0) return [];
  const zoneCount = `only ${availableZones.size} ${availableZones.size === 1 ? "zone" : "zones"}`;
  const shares = sharedZones.map((zone) => {
    const ids = replicas.filter((node) => node.zone === zone).map((node) => node.id);
    return `replicas on ${ids.slice(0, -1).join(", ")} and ${ids.at(-1)} share zone ${zone}`;
  });
  return [`${zoneCount} available (${[...availableZones].sort().join(", ")}); ${shares.join("; ")}`];
}

const selectorEntries = (selector: Labels | undefined): [string, string][] => Object.entries(selector ?? {});
const formatLabels = (entries: [string, string][]) =>
  entries.map(([key, value]) => `${key}=${value}`).join(",");
