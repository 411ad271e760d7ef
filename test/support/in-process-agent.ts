import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { configuredRepository } from "../../agent/cloudsnap/configured.js";
import type { Logger } from "../../agent/log.js";
import { NodeMembership } from "../../agent/membership.js";
import { type NodeOperations, startNodeOperations } from "../../agent/operations/node-operations.js";
import { volumeExecutors } from "../../agent/operations/volume-executors.js";
import { PeerReplicas } from "../../agent/peer-replicas.js";
import { Pool } from "../../agent/pool.js";
import { ReplicaHost } from "../../agent/replica-host.js";
import { type ReplicaServer, startReplicaServer } from "../../agent/replication/server/server.js";
import { VolumeCloudsnaps } from "../../agent/volumes/cloudsnaps.js";
import { clusterTiming } from "../../agent/volumes/cluster-context.js";
import { ClusterVolumes } from "../../agent/volumes/service.js";
import { HEARTBEAT_TIMEOUT_MS } from "../../core/liveness.js";
import type { StateStore } from "../../core/state/store.js";

/** An agent's parts in this process, for tests that reach into them (spies, a node's replicas). */
export interface InProcessAgent {
  readonly nodeId: string;
  readonly volumes: ClusterVolumes;
  readonly replicas: ReplicaHost;
  /** Its part in operations: the API's service and the runner of its queue. */
  readonly operations: NodeOperations;
  close(): Promise<void>;
}

export interface InProcessAgentOptions {
  store: StateStore;
  nodeId: string;
  zone: string;
  log: Logger;
  /** With it, the agent serves its replicas to peers and reaches theirs, as with STRATA_CLUSTER_SECRET. */
  secret?: string;
  /** Serves the control API over the agent's services; resolves with its URL. */
  serveApi?: (
    volumes: ClusterVolumes,
    operations: NodeOperations,
  ) => Promise<{ url: string; close(): Promise<void> }>;
}

/**
 * What agent/main.ts wires, in this process, on a small file-backed pool in a temporary directory:
 * the volume service, the replica server (with a secret), the operation runner and the node's
 * membership. Resolves once the node has registered.
 */
export async function startInProcessAgent(options: InProcessAgentOptions): Promise<InProcessAgent> {
  const { store, nodeId, zone, log, secret } = options;
  const dir = await mkdtemp(join(tmpdir(), `strata-${nodeId}-`));
  const pool = await Pool.open([{ path: join(dir, "drives", "d0"), capacityBytes: 8 * 1024 ** 3 }]);
  const replicas = await ReplicaHost.open(pool, log);
  const identity = { nodeId, zone, version: "test", startedAt: new Date().toISOString() };
  const volumes = new ClusterVolumes(
    identity,
    pool,
    store,
    replicas,
    new PeerReplicas(secret, log),
    clusterTiming(HEARTBEAT_TIMEOUT_MS),
    log,
  );
  const server: ReplicaServer | undefined =
    secret === undefined
      ? undefined
      : await startReplicaServer({
          host: "127.0.0.1",
          port: 0,
          secret,
          resolve: (volumeId) => replicas.get(volumeId),
          admin: replicas,
          log,
        });
  const cloudsnaps = new VolumeCloudsnaps(volumes, store, configuredRepository(), nodeId, log);
  const operations = startNodeOperations({
    store,
    node: nodeId,
    executors: volumeExecutors(volumes, cloudsnaps, nodeId),
    log,
  });
  const api = await options.serveApi?.(volumes, operations);
  volumes.endpoints = {
    apiUrl: api?.url ?? "",
    nbdAddress: "127.0.0.1:10809",
    nbdSocket: join(dir, "nbd.sock"),
  };
  const membership = NodeMembership.start({
    tableName: store.tableName,
    node: {
      id: nodeId,
      zone,
      addresses: {
        api: volumes.endpoints.apiUrl,
        nbd: volumes.endpoints.nbdAddress,
        replication: server === undefined ? "" : `127.0.0.1:${server.address.port}`,
      },
    },
    pool: async () => (await volumes.nodeStatus()).pool,
    log,
  });
  await membership.registrationTried();
  return {
    nodeId,
    volumes,
    replicas,
    operations,
    close: async () => {
      await api?.close();
      await operations.stop();
      await membership.stop();
      await volumes.close();
      await server?.close();
      await replicas.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
}
