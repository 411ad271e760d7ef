import { ControlClient } from "../core/control-client.js";
import { StrataError } from "../core/errors.js";
import { heartbeatTimeoutMs, whyDown } from "../core/liveness.js";
import { useLocalAws } from "../core/local-aws-environment.js";
import type { NodeStatus, Replica, Volume } from "../core/model.js";
import type { NodePool, NodeRecord, ZoneRecord } from "../core/state/records.js";
import { StateStore } from "../core/state/store.js";
import type { ClusterFile } from "../infra/local/cluster-file.js";
import { CliError } from "./failures.js";

/**
 * A node as `cluster status` sees it: its record in the state store combined with what its agent
 * says live. up: heartbeating and answering; down: marked down, or its last heartbeat is older than
 * the timeout; unreachable: heartbeating, but its control API does not answer.
 */
export interface NodeHealth {
  id: string;
  zone: string;
  state: "up" | "down" | "unreachable";
  /** null when the node has never registered. */
  lastHeartbeat: string | null;
  apiUrl: string;
  /** The store's view of the pool (free space as of the last heartbeat). */
  pool: NodePool | null;
  /** The agent's own answer, when it gave one. */
  live: NodeStatus | null;
  /** Why the agent gave no answer. */
  problem: string | null;
}

/** A volume across the cluster: each node that holds a replica of it contributes that replica. */
export interface ClusterVolume {
  id: string;
  name: string;
  sizeBytes: number;
  epoch: number;
  attachedNode: string | null;
  replicas: Replica[];
}

/** Nodes whose pools are on one filesystem (a local cluster's): their free space is one, not a sum. */
export interface SharedFilesystem {
  nodes: string[];
  freeBytes: number;
}

export interface ClusterStatus {
  pid: number;
  startedAt: string;
  dynamodb: ClusterFile["dynamodb"];
  nodes: NodeHealth[];
  sharedFilesystems: SharedFilesystem[];
  /** Zones the az-failure workflow marked unavailable for placement, with why. */
  unavailableZones: { zone: string; reason: string; since: string }[];
  volumes: ClusterVolume[];
}

export async function clusterStatus(file: ClusterFile): Promise<ClusterStatus> {
  // The verdict is taken against the time the question was asked, not after slow probes have run.
  const now = Date.now();
  const { nodes: records, zones } = await storeRecords(file);
  const nodes = await Promise.all(
    nodeIds(file, records).map((id) =>
      nodeHealth(
        id,
        records.find((record) => record.id === id),
        file.nodes.find((node) => node.id === id),
        now,
      ),
    ),
  );
  const volumes = await Promise.all(
    nodes.filter((node) => node.live !== null).map((node) => new ControlClient(node.apiUrl).listVolumes()),
  );
  return {
    pid: file.pid,
    startedAt: file.startedAt,
    dynamodb: file.dynamodb,
    nodes,
    sharedFilesystems: sharedFilesystems(nodes),
    unavailableZones: zones
      .filter((zone) => !zone.available)
      .map((zone) => ({ zone: zone.zone, reason: zone.reason, since: zone.changedAt })),
    volumes: mergeReplicas(volumes.flat()),
  };
}

export function sharedFilesystems(nodes: readonly NodeHealth[]): SharedFilesystem[] {
  const byFilesystem = new Map<string, NodeHealth[]>();
  for (const node of nodes) {
    const id = node.live?.pool.filesystemId ?? node.pool?.filesystemId;
    if (id !== undefined) byFilesystem.set(id, [...(byFilesystem.get(id) ?? []), node]);
  }
  return [...byFilesystem.values()]
    .filter((sharing) => sharing.length > 1)
    .map((sharing) => ({
      nodes: sharing.map((node) => node.id),
      // Each pool counts the filesystem's free space as its own: what the fullest one has left is what is there.
      freeBytes: Math.min(...sharing.map((node) => node.live?.pool.freeBytes ?? node.pool?.freeBytes ?? 0)),
    }));
}

async function storeRecords(file: ClusterFile): Promise<{ nodes: NodeRecord[]; zones: ZoneRecord[] }> {
  useLocalAws(file.dynamodb.endpoint);
  const store = new StateStore({ tableName: file.dynamodb.table });
  try {
    const [nodes, zones] = await Promise.all([store.nodes.list(), store.zones.list()]);
    return { nodes, zones };
  } catch (error) {
    throw new CliError(
      `cannot read the cluster state store at ${file.dynamodb.endpoint}: ${(error as Error).message}`,
    );
  } finally {
    store.close();
  }
}

/** The nodes of cluster.json in order, then any the store knows from earlier runs. */
function nodeIds(file: ClusterFile, records: readonly NodeRecord[]): string[] {
  const ids = file.nodes.map((node) => node.id);
  const others = records.map((record) => record.id).filter((id) => !ids.includes(id));
  return [...ids, ...others.sort()];
}

async function nodeHealth(
  id: string,
  record: NodeRecord | undefined,
  node: ClusterFile["nodes"][number] | undefined,
  now: number,
): Promise<NodeHealth> {
  const apiUrl = node?.apiUrl ?? record?.addresses.api ?? "";
  let live: NodeStatus | null = null;
  let problem: string | null = null;
  try {
    live = await new ControlClient(apiUrl).nodeStatus();
  } catch (error) {
    if (!(error instanceof StrataError)) throw error;
    problem = error.message;
  }
  return {
    id,
    zone: record?.zone ?? node?.zone ?? "-",
    state: verdict(record, live !== null, now),
    lastHeartbeat: record?.lastHeartbeat ?? null,
    apiUrl,
    pool: record ? record.pool : null,
    live,
    problem,
  };
}

function verdict(record: NodeRecord | undefined, answers: boolean, now: number): NodeHealth["state"] {
  // Never registered (an agent that cannot reach the store yet): only its own answer says anything.
  if (record === undefined) return answers ? "up" : "unreachable";
  if (whyDown(record, { heartbeatTimeoutMs: heartbeatTimeoutMs(), now: new Date(now) }) !== undefined) {
    return "down";
  }
  return answers ? "up" : "unreachable";
}

/** One entry per volume id, with the replicas every node reported for it (highest epoch wins the rest). */
function mergeReplicas(reported: readonly Volume[]): ClusterVolume[] {
  const byId = new Map<string, ClusterVolume>();
  for (const volume of reported) {
    const known = byId.get(volume.id);
    const replicas = [...(known?.replicas ?? []), ...volume.replicas].filter(
      (replica, index, all) => all.findIndex((other) => other.node === replica.node) === index,
    );
    const newest = known && known.epoch > volume.epoch ? known : volume;
    byId.set(volume.id, {
      id: volume.id,
      name: newest.name,
      sizeBytes: newest.sizeBytes,
      epoch: newest.epoch,
      attachedNode: newest.attachedNode,
      replicas,
    });
  }
  return [...byId.values()].sort((a, b) => a.name.localeCompare(b.name) || a.id.localeCompare(b.id));
}
