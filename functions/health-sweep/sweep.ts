import { StrataDetailType, type StrataEventEntry, strataEvent } from "../../core/events.js";
import { MARKED_DOWN, whyDown, zoneVerdict } from "../../core/liveness.js";
import { healthSubject, offlineSince } from "../../core/state/health.js";
import type { HealthVerdict, NodeRecord } from "../../core/state/records.js";
import type { ClusterAccess } from "../shared/cluster.js";

export interface SweepResult {
  offlineNodes: string[];
  offlineZones: string[];
  /** The events this sweep put: one per verdict it changed. */
  events: StrataEventEntry[];
}

/**
 * The health sweep (every minute in AWS, a timer locally): applies the liveness rule
 * (core/liveness.ts) to every node, and the majority rule (zoneVerdict) to every zone, and records each
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
  /** The offline nodes that went offline by a clean stop, as the verdict that took them offline said. */
  const stoppedCleanly = new Set<string>();

  for (const node of nodes) {
    const down = whyDown(node, liveness);
    const subject = healthSubject.node(node.id);
    if (down !== undefined) offlineNodes.push(node.id);
    const wentOffline = previous.get(subject)?.offline === true ? previous.get(subject)?.reason : down;
    if (down !== undefined && wentOffline === MARKED_DOWN) stoppedCleanly.add(node.id);
    const reason = down ?? "heartbeating";
    if (!changed({ subject, offline: down !== undefined, reason })) continue;
    events.push(
      strataEvent(down === undefined ? StrataDetailType.nodeOnline : StrataDetailType.nodeOffline, {
        clusterName: cluster.clusterName,
        nodeId: node.id,
        zone: node.zone,
        ...(node.instanceId === undefined ? {} : { instanceId: node.instanceId }),
        ...(node.registeredAt === undefined ? {} : { registeredAt: node.registeredAt }),
        ...(down === undefined ? {} : { stoppedCleanly: stoppedCleanly.has(node.id) }),
        reason,
        observedAt,
      }),
    );
  }

  const offlineZones: string[] = [];
  const foundOffline = offlineSince(verdicts);
  for (const [zone, members] of byZone(nodes)) {
    // A zone found offline keeps counting the nodes it failed with until they return.
    const before = previous.get(healthSubject.zone(zone));
    const failingSince = before?.offline === true ? new Date(before.since) : liveness.now;
    const verdict = zoneVerdict(members, liveness, foundOffline, failingSince);
    if (verdict.offline) offlineZones.push(zone);
    const offline = verdict.down.length;
    const reason = `${offline} of ${verdict.counted.length} nodes offline`;
    if (!changed({ subject: healthSubject.zone(zone), offline: verdict.offline, reason })) continue;
    events.push(
      strataEvent(verdict.offline ? StrataDetailType.zoneOffline : StrataDetailType.zoneOnline, {
        clusterName: cluster.clusterName,
        zone,
        offlineNodes: offline,
        totalNodes: verdict.counted.length,
        ...(verdict.offline
          ? { stoppedCleanly: verdict.down.every(({ node }) => stoppedCleanly.has(node.id)) }
          : {}),
        reason,
        observedAt,
      }),
    );
  }

  if (events.length > 0) await publish(events);
  for (const { subject, offline, reason } of changes)
    await cluster.store.health.change(subject, offline, reason, observedAt);
  return { offlineNodes, offlineZones, events };
}

type Verdict = Pick<HealthVerdict, "subject" | "offline" | "reason">;

function byZone(nodes: readonly NodeRecord[]): Map<string, NodeRecord[]> {
  const zones = new Map<string, NodeRecord[]>();
  for (const node of nodes) zones.set(node.zone, [...(zones.get(node.zone) ?? []), node]);
  return zones;
}
