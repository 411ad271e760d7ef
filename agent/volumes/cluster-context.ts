import { millisecondsFromEnv } from "../../core/env-settings.js";
import { notFound, StrataError } from "../../core/errors.js";
import { countReplicas } from "../../core/placement.js";
import { RecordNotFoundError } from "../../core/state/errors.js";
import type { NodeRecord, VolumeRecord } from "../../core/state/records.js";
import type { StateStore } from "../../core/state/store.js";
import type { Logger } from "../log.js";
import { Mutex } from "../mutex.js";
import type { NodeIdentity } from "../node-identity.js";
import type { PeerReplicas } from "../peer-replicas.js";
import { DEFAULT_CHECKPOINT_MS } from "../replication/coordinator/coordinator.js";
import type { ReplicaAdmin, ReplicaInfo, ReplicaSpec } from "../replication/replica-admin.js";
import { localReplicaHandle, type ReplicaHandle } from "../replication/replica-handle.js";
import type { Replica } from "../store/replica.js";

/** This node's replicas on its pool (agent/replica-host.ts's ReplicaHost). */
export interface LocalReplicas extends ReplicaAdmin {
  get(volumeId: string): Replica | undefined;
  list(): Replica[];
}

/** What creating, finding and removing replicas needs, the same on this node and over the protocol. */
type ReplicaLifecycle = Pick<ReplicaAdmin, "createReplica" | "deleteReplica"> & {
  listReplicas(volumeId: string): ReplicaInfo[] | Promise<ReplicaInfo[]>;
};

export interface ClusterTiming {
  /** A node silent for longer is down (placement skips it, resync waits for it). */
  heartbeatTimeoutMs: number;
  /** How often coordinators checkpoint (see DEFAULT_CHECKPOINT_MS). */
  checkpointIntervalMs: number;
  /** How long a replica no volume record lists must stay so before it is deleted. */
  orphanGraceMs: number;
}

/**
 * A replica exists before its volume's record lists it (a create or an added replica is recorded
 * last), for seconds; one still unlisted after this long is garbage: its volume was deleted or it
 * was replaced while its node was away.
 */
const ORPHAN_GRACE_MS = 10 * 60_000;

/** The timing from the environment: STRATA_CHECKPOINT_INTERVAL_MS and STRATA_ORPHAN_GRACE_MS shorten them for tests and demos. */
export function clusterTiming(
  heartbeatTimeoutMs: number,
  env: NodeJS.ProcessEnv = process.env,
): ClusterTiming {
  return {
    heartbeatTimeoutMs,
    checkpointIntervalMs: millisecondsFromEnv("STRATA_CHECKPOINT_INTERVAL_MS", DEFAULT_CHECKPOINT_MS, env),
    orphanGraceMs: millisecondsFromEnv("STRATA_ORPHAN_GRACE_MS", ORPHAN_GRACE_MS, env),
  };
}

/**
 * What the parts of this node's volume service share: who this node is, the state store, the
 * replicas here and on peers, one lock per volume name, and the reads every decision starts from.
 */
export class ClusterContext {
  private readonly locks = new Map<string, Mutex>();

  constructor(
    readonly identity: NodeIdentity,
    readonly store: StateStore,
    readonly local: LocalReplicas,
    private readonly peers: PeerReplicas,
    readonly timing: ClusterTiming,
    readonly log: Logger,
  ) {}

  get nodeId(): string {
    return this.identity.nodeId;
  }

  /** Every change of one volume (and the take of a name) runs under its lock, one at a time. */
  lock(name: string): Mutex {
    let lock = this.locks.get(name);
    if (lock === undefined) {
      lock = new Mutex();
      this.locks.set(name, lock);
    }
    return lock;
  }

  async record(name: string): Promise<VolumeRecord> {
    try {
      return await this.store.volumes.getByName(name);
    } catch (error) {
      if (error instanceof RecordNotFoundError) throw notFound(`volume "${name}"`);
      throw error;
    }
  }

  async nodes(): Promise<Map<string, NodeRecord>> {
    return new Map((await this.store.nodes.list()).map((node) => [node.id, node]));
  }

  /** What placement decides on: the nodes, the replicas each holds, and when a node counts as down. */
  async clusterView() {
    const [nodes, volumes, unavailableZones] = await Promise.all([
      this.store.nodes.list(),
      this.store.volumes.list(),
      this.store.zones.unavailable(),
    ]);
    return {
      nodes,
      unavailableZones,
      replicaCounts: countReplicas(volumes),
      heartbeatTimeoutMs: this.timing.heartbeatTimeoutMs,
      now: new Date(),
    };
  }

  /** The same replica administration here and on a peer: locally directly, remotely over the protocol. */
  admin<T>(node: NodeRecord, work: (admin: ReplicaLifecycle) => Promise<T>): Promise<T> {
    return node.id === this.nodeId ? work(this.local) : this.peers.call(node, work);
  }

  async createReplica(node: NodeRecord, spec: ReplicaSpec): Promise<void> {
    await this.admin(node, (admin) => admin.createReplica(spec));
  }

  async destroyReplica(node: NodeRecord, volumeId: string, replicaId: string): Promise<void> {
    await this.admin(node, (admin) => admin.deleteReplica(volumeId, replicaId));
  }

  /**
   * A coordinator's handle on the volume's replica on `nodeId`: direct here (whether or not this
   * node has registered yet), over the protocol elsewhere.
   */
  async handleOn(
    nodeId: string,
    volumeId: string,
    nodes: ReadonlyMap<string, NodeRecord>,
  ): Promise<ReplicaHandle> {
    if (nodeId !== this.nodeId) {
      const node = nodes.get(nodeId);
      if (node === undefined) throw new Error(`node ${nodeId} is not registered`);
      return this.peers.open(node, volumeId);
    }
    const local = this.local.get(volumeId);
    if (local === undefined)
      throw new StrataError("NOT_FOUND", `no replica of volume ${volumeId} on this node`);
    return localReplicaHandle(local, this.local);
  }
}

export function liveCount(record: VolumeRecord): number {
  return record.replicas.filter((replica) => replica.state !== "failed").length;
}
