import { StrataDetailType, type StrataEventEntry, strataEvent } from "../../core/events.js";
import { whyDown } from "../../core/liveness.js";
import { healthSubject } from "../../core/state/health.js";
import type { HealthVerdict, NodeRecord } from "../../core/state/records.js";
import type { ClusterAccess } from "../shared/cluster.js";

/**
 * A zone is offline when more than half of its nodes are, and it has at least this many: the loss
 * of a zone's only node is a node loss (node-loss repairs it), and one silent node of a pair is not
 * enough to call a whole zone down.
 */
export const MIN_NODES_FOR_ZONE_VERDICT = 2;

export interface SweepResult {
  offlineNodes: string[];
  offlineZones: string[];
  /** The events this sweep put: one per verdict it changed. */
  events: StrataEventEntry[];
}

/**
 * The health sweep (every minute in AWS, a timer locally): applies the liveness rule
 * (core/liveness.ts) to every node, and the majority rule above to every zone, and records each
 * verdict that changed, putting "Strata Node Offline"/"Online" and "Strata Zone Offline"/"Online"
 * for it. The events are put before the verdicts are recorded: a sweep cut short in between puts
 * them again next time (event intake names executions deterministically, so a repeat starts
 * nothing), whereas the other order could lose one. The first verdict on a node or zone that is
 * online is recorded silently: nothing came back.
 */
export async function sweepHealth(
  cluster: ClusterAccess,
  publish: (events: StrataEventEntry[]) => Promise<unknown>,
): Promise<SweepResult> {
  const [nodes, verdicts] = await Promise.all([cluster.store.nodes.list(), cluster.store.health.list()]);
  const previous = new Map(verdicts.map((verdict) => [verdict.subject, verdict]));
  const liveness = cluster.liveness();
  const observedAt = liveness.now.toISOString();
  const events: StrataEventEntry[] = [];
  const changes: Verdict[] = [];
  const changed = (verdict: Verdict) => {
    const before = previous.get(verdict.subject);
    if (before !== undefined && before.offline === verdict.offline) return false;
    changes.push(verdict);
    return before !== undefined || verdict.offline;
  };
  const offlineNodes: string[] = [];

  for (const node of nodes) {
    const down = whyDown(node, liveness);
    if (down !== undefined) offlineNodes.push(node.id);
    const reason = down ?? "heartbeating";
    if (!changed({ subject: healthSubject.node(node.id), offline: down !== undefined, reason })) continue;
    events.push(
      strataEvent(down === undefined ? StrataDetailType.nodeOnline : StrataDetailType.nodeOffline, {
        clusterName: cluster.clusterName,
        nodeId: node.id,
        zone: node.zone,
        ...(node.instanceId === undefined ? {} : { instanceId: node.instanceId }),
        ...(node.registeredAt === undefined ? {} : { registeredAt: node.registeredAt }),
        ...(down === undefined ? {} : { stoppedCleanly: node.state === "down" }),
        reason,
        observedAt,
      }),
    );
  }

  const offlineZones: string[] = [];
  for (const [zone, members] of byZone(nodes)) {
    const offline = members.filter((node) => offlineNodes.includes(node.id)).length;
    const isOffline = members.length >= MIN_NODES_FOR_ZONE_VERDICT && offline * 2 > members.length;
    if (isOffline) offlineZones.push(zone);
    const reason = `${offline} of ${members.length} nodes offline`;
    if (!changed({ subject: healthSubject.zone(zone), offline: isOffline, reason })) continue;
    events.push(
      strataEvent(isOffline ? StrataDetailType.zoneOffline : StrataDetailType.zoneOnline, {
        clusterName: cluster.clusterName,
        zone,
        offlineNodes: offline,
        totalNodes: members.length,
        reason,
        observedAt,
      }),
    );
  }

  if (events.length > 0) await publish(events);
  for (const { subject, offline, reason } of changes)
    await cluster.store.health.change(subject, offline, reason);
  return { offlineNodes, offlineZones, events };
}

type Verdict = Pick<HealthVerdict, "subject" | "offline" | "reason">;

function byZone(nodes: readonly NodeRecord[]): Map<string, NodeRecord[]> {
  const zones = new Map<string, NodeRecord[]>();
  for (const node of nodes) zones.set(node.zone, [...(zones.get(node.zone) ?? []), node]);
  return zones;
}
