import { newCloudsnapId } from "../../core/cloud/cloudsnap-layout.js";
import type { Cloudsnap } from "../../core/cloudsnaps.js";
import type { Replica } from "../../core/model.js";
import type { ScheduleKind } from "../../core/schedule-policies.js";
import type { NodeRecord, VolumeRecord } from "../../core/state/records.js";
import type { StateStore } from "../../core/state/store.js";
import type { ClusterAccess } from "../../functions/shared/cluster.js";
import { GiB, nodeRecord } from "../core/fixtures.js";

/** The moment every verdict in these suites is taken at. */
export const NOW = new Date("2030-01-01T00:00:05.000Z");
/** A heartbeat NOW counts as fresh. */
export const FRESH = "2030-01-01T00:00:00.000Z";
/** A heartbeat an hour old at NOW: its node is down. */
export const STALE = "2029-12-31T23:00:00.000Z";
export const HEARTBEAT_TIMEOUT_MS = 10_000;
export const CLUSTER = "strata-test";

/**
 * The cluster as a Lambda sees it (shared/cluster.ts), over a test's store, with the liveness
 * rule's clock under the test's control.
 */
export function clusterOver(store: StateStore, now: () => Date = () => NOW): ClusterAccess {
  return {
    store,
    clusterName: CLUSTER,
    liveness: () => ({ heartbeatTimeoutMs: HEARTBEAT_TIMEOUT_MS, now: now() }),
  };
}

/** A registered node with a fresh heartbeat; `stale` makes its heartbeat an hour old. */
export function liveNode(id: string, zone: string, overrides: Partial<NodeRecord> = {}): NodeRecord {
  return nodeRecord(id, { zone, lastHeartbeat: FRESH, ...overrides });
}

export function staleNode(id: string, zone: string, overrides: Partial<NodeRecord> = {}): NodeRecord {
  return liveNode(id, zone, { lastHeartbeat: STALE, ...overrides });
}

export async function registerAll(store: StateStore, nodes: readonly NodeRecord[]): Promise<void> {
  for (const node of nodes) await store.nodes.register(node);
}

export const replica = (node: string, state: Replica["state"] = "in-sync"): Replica => ({
  replicaId: `r-${node}`,
  node,
  state,
});

/** A volume with these replicas, attached to `attachedNode` when given (which takes one epoch). */
export async function volumeWith(
  store: StateStore,
  name: string,
  replicas: Replica[],
  attachedNode: string | null = null,
): Promise<VolumeRecord> {
  const volume = await store.volumes.create({
    name,
    sizeBytes: 10 * GiB,
    replicationFactor: replicas.length,
    replicas,
  });
  if (attachedNode === null) return volume;
  return store.volumes.updateIfEpoch(volume.id, volume.epoch, { attachedNode });
}

/** Step Functions execution names: 1-80 of letters, digits, '-' and '_'. */
export const EXECUTION_NAME = /^[A-Za-z0-9_-]{1,80}$/;

/** A catalog entry of an empty 4 KiB cloudsnap of `volumeId` taken at `at`, by `schedule` or by hand. */
export function catalogEntry(volumeId: string, at: Date, schedule?: ScheduleKind): Cloudsnap {
  return {
    id: newCloudsnapId(volumeId, at),
    createdAt: at.toISOString(),
    volumeName: "v",
    sizeBytes: 4096,
    replicationFactor: 1,
    snapshotId: `snapshot-${at.getTime()}`,
    dataBytes: 0,
    scannedBytes: 0,
    uploadedBytes: 0,
    chunks: 0,
    newChunks: 0,
    incremental: false,
    ...(schedule === undefined ? {} : { schedule }),
  };
}
