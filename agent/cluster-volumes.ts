import { randomUUID } from "node:crypto";
import { millisecondsFromEnv } from "../core/env-settings.js";
import { conflict, invalid, notFound, StrataError } from "../core/errors.js";
import { whyDown } from "../core/liveness.js";
import type { Attachment, Labels, NodeStatus, Snapshot, Volume } from "../core/model.js";
import { countReplicas, placeAdditionalReplica, placeVolume, requirePlacement } from "../core/placement.js";
import { EpochConflictError, RecordExistsError, RecordNotFoundError } from "../core/state/errors.js";
import type { NodeRecord, VolumeRecord } from "../core/state/records.js";
import type { StateStore } from "../core/state/store.js";
import { FIRST_EPOCH } from "../core/state/volumes.js";
import { formatSize } from "../core/units.js";
import type { CreateVolume, VolumeService } from "../core/volume-service.js";
import { countedLease, type ExportLease, type ExportRegistry } from "./exports.js";
import type { Logger } from "./log.js";
import { Mutex } from "./mutex.js";
import type { PeerReplicas } from "./peer-replicas.js";
import type { Pool } from "./pool.js";
import {
  type CoordinatorState,
  DEFAULT_CHECKPOINT_MS,
  type SnapshotReader,
  VolumeCoordinator,
} from "./replication/coordinator.js";
import { ReplicaUnavailableError } from "./replication/errors.js";
import {
  chunksOf,
  DEFAULT_CHUNK_BYTES,
  DEFAULT_COPY_CONCURRENCY,
  type Rebuild,
} from "./replication/rebuild.js";
import type { ReplicaAdmin, ReplicaInfo, ReplicaSpec } from "./replication/replica-admin.js";
import { localReplicaHandle, type ReplicaHandle } from "./replication/replica-handle.js";
import { StoreMembership } from "./replication/store-membership.js";
import type { Replica } from "./store/replica.js";
import {
  defaultSnapshotName,
  describeAttachment,
  describeNode,
  type Endpoints,
  type NodeIdentity,
} from "./volumes.js";

/** This node's replicas on its pool (agent/replica-host.ts's ReplicaHost). */
export interface LocalReplicas extends ReplicaAdmin {
  get(volumeId: string): Replica | undefined;
  list(): Replica[];
  /** Set for a standalone volume's replica: not the cluster's, never an orphan. */
  holder(volumeId: string): string | undefined;
}

/** What creating, finding and removing replicas needs, the same on this node and over the protocol. */
type ReplicaLifecycle = Pick<ReplicaAdmin, "createReplica" | "deleteReplica"> & {
  listReplicas(volumeId: string): ReplicaInfo[] | Promise<ReplicaInfo[]>;
};

/** Coordinators that can still change their replica set (not fenced, failed or closed). */
const LIVE_STATES: ReadonlySet<CoordinatorState> = new Set(["serving", "holding", "changing-membership"]);
/** How often attached volumes are checked for failed replicas whose node is back with their data. */
const RESYNC_SCAN_MS = 3000;
/** After a resync failed, the same replica is tried again no sooner than this. */
const RESYNC_RETRY_MS = 30_000;

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
/** How often this node looks for orphaned replicas (more often when the grace is shorter). */
const ORPHAN_SWEEP_MS = 60_000;

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

interface AttachedVolume {
  coordinator: VolumeCoordinator;
  /** Open NBD connections. */
  leases: number;
}

/**
 * Volumes in cluster mode: their records live in the state store, their replicas on the nodes
 * placement chose, and the node a volume is attached to runs its coordinator, which the NBD
 * server exports. Every change of a replica set or attachment is a CAS on the volume's epoch.
 */
export class ClusterVolumes implements VolumeService, ExportRegistry {
  private readonly attached = new Map<string, AttachedVolume>();
  private readonly locks = new Map<string, Mutex>();
  /** Replica id → when a resync of it may be tried again after one failed. */
  private readonly resyncRetryAt = new Map<string, number>();
  private readonly resyncScan: NodeJS.Timeout;
  private scanning = false;
  private readonly orphanSweep: NodeJS.Timeout;
  /** Replica id → when the sweep first found no record listing it. */
  private readonly orphanSince = new Map<string, number>();
  private sweeping = false;
  endpoints: Endpoints = { apiUrl: "", nbdAddress: "", nbdSocket: null };

  constructor(
    private readonly identity: NodeIdentity,
    private readonly pool: Pool,
    private readonly store: StateStore,
    private readonly local: LocalReplicas,
    private readonly peers: PeerReplicas,
    private readonly timing: ClusterTiming,
    private readonly log: Logger,
  ) {
    this.resyncScan = setInterval(() => this.tendReplicaSets(), RESYNC_SCAN_MS);
    this.resyncScan.unref();
    this.orphanSweep = setInterval(
      () => this.sweepOrphans(),
      Math.min(ORPHAN_SWEEP_MS, Math.ceil(timing.orphanGraceMs / 3)),
    );
    this.orphanSweep.unref();
  }

  /** Re-attaches the volumes the store says are attached here (the agent restarted). */
  async resume(): Promise<void> {
    let volumes: VolumeRecord[];
    try {
      volumes = await this.store.volumes.list();
    } catch (error) {
      // The store may be down at start: the volumes stay attached in it, and an attach from the
      // operator (or the next restart) brings them back.
      this.log.error({ err: error }, "could not read the state store to re-attach volumes");
      return;
    }
    for (const volume of volumes) {
      if (volume.attachedNode !== this.identity.nodeId) continue;
      try {
        await this.attachVolume(volume.name);
      } catch (error) {
        this.log.error({ err: error, volume: volume.name }, "could not re-attach a volume after restart");
      }
    }
  }

  private lock(name: string): Mutex {
    let lock = this.locks.get(name);
    if (lock === undefined) {
      lock = new Mutex();
      this.locks.set(name, lock);
    }
    return lock;
  }

  async exists(name: string): Promise<boolean> {
    return (await this.store.volumes.getByName(name).catch(() => undefined)) !== undefined;
  }

  private async record(name: string): Promise<VolumeRecord> {
    try {
      return await this.store.volumes.getByName(name);
    } catch (error) {
      if (error instanceof RecordNotFoundError) throw notFound(`volume "${name}"`);
      throw error;
    }
  }

  private async nodes(): Promise<Map<string, NodeRecord>> {
    return new Map((await this.store.nodes.list()).map((node) => [node.id, node]));
  }

  private async clusterView() {
    const [nodes, volumes] = await Promise.all([this.store.nodes.list(), this.store.volumes.list()]);
    return {
      nodes,
      replicaCounts: countReplicas(volumes),
      heartbeatTimeoutMs: this.timing.heartbeatTimeoutMs,
      now: new Date(),
    };
  }

  private toVolume(record: VolumeRecord, nodes: Map<string, NodeRecord>): Volume {
    const local = this.local.get(record.id);
    const attachedAt = record.attachedNode === null ? undefined : nodes.get(record.attachedNode);
    return {
      id: record.id,
      name: record.name,
      sizeBytes: record.sizeBytes,
      labels: record.labels,
      createdAt: record.createdAt,
      epoch: record.epoch,
      attachedNode: record.attachedNode,
      nbdUri: attachedAt === undefined ? null : `nbd://${attachedAt.addresses.nbd}/${record.name}`,
      // What this node's replica holds; every in-sync replica holds the same blocks.
      allocatedBytes: local?.allocatedBytes ?? 0,
      snapshotCount: local?.snapshots().length ?? 0,
      replicas: record.replicas.map((replica) => {
        const progress = this.attached.get(record.name)?.coordinator.rebuild(replica.replicaId)?.progress;
        const zone = nodes.get(replica.node)?.zone;
        return {
          ...replica,
          ...(zone === undefined ? {} : { zone }),
          ...(progress === undefined || replica.state !== "rebuilding"
            ? {}
            : {
                rebuild: {
                  kind: progress.kind,
                  copiedBytes: progress.copiedBytes,
                  totalBytes: progress.totalBytes,
                },
              }),
        };
      }),
    };
  }

  async nodeStatus(): Promise<NodeStatus> {
    const replicas = this.local.list();
    const provisioned = replicas.reduce((sum, replica) => sum + replica.sizeBytes, 0);
    return describeNode(this.identity, this.endpoints, this.pool.usage(provisioned), replicas.length);
  }

  async listVolumes(): Promise<Volume[]> {
    const [records, nodes] = await Promise.all([this.store.volumes.list(), this.nodes()]);
    return records.map((record) => this.toVolume(record, nodes)).sort((a, b) => a.name.localeCompare(b.name));
  }

  async getVolume(name: string): Promise<Volume> {
    return this.toVolume(await this.record(name), await this.nodes());
  }

  /**
   * Places the replicas, creates them on their nodes, and only then writes the volume's record: a
   * volume is listed only once all its replicas exist. A failure removes the replicas made so far.
   * A node that cannot be reached (it died and its heartbeat has not timed out yet) is left out
   * and the replicas are placed again without it.
   */
  createVolume(request: CreateVolume): Promise<Volume> {
    return this.lock(request.name).run(() => this.createUnlocked(request));
  }

  /** `fill`, when given, writes the new replicas' data before the record makes the volume visible. */
  private async createUnlocked(request: CreateVolume, fill?: FillReplicas): Promise<Volume> {
    if (await this.exists(request.name)) {
      throw new StrataError("ALREADY_EXISTS", `volume "${request.name}" already exists`);
    }
    const unreachable = new Set<string>();
    for (;;) {
      const view = await this.clusterView();
      const placement = requirePlacement(
        placeVolume(request, {
          ...view,
          nodes: view.nodes.map((node) =>
            unreachable.has(node.id) ? { ...node, state: "down" as const } : node,
          ),
        }),
      );
      try {
        return await this.createPlaced(request, placement, fill);
      } catch (error) {
        if (!(error instanceof NodeUnreachable)) throw error;
        this.log.warn(
          { volume: request.name, node: error.nodeId, err: error.cause },
          "placing again without an unreachable node",
        );
        unreachable.add(error.nodeId);
      }
    }
  }

  private async createPlaced(
    request: CreateVolume,
    placement: { nodes: string[]; warnings: string[] },
    fill: FillReplicas | undefined,
  ): Promise<Volume> {
    for (const warning of placement.warnings) this.log.warn({ volume: request.name }, warning);
    const nodes = await this.nodes();
    const volumeId = randomUUID();
    const replicas = placement.nodes.map((node) => ({
      replicaId: randomUUID(),
      node,
      state: "in-sync" as const,
    }));
    const made: typeof replicas = [];
    try {
      for (const replica of replicas) {
        const spec = {
          volumeId,
          replicaId: replica.replicaId,
          sizeBytes: request.sizeBytes,
          epoch: FIRST_EPOCH,
        };
        await this.createReplica(nodes.get(replica.node)!, spec).catch((error: unknown) => {
          throw error instanceof ReplicaUnavailableError ? new NodeUnreachable(replica.node, error) : error;
        });
        made.push(replica);
      }
      if (fill !== undefined) await this.fillReplicas(volumeId, made, nodes, fill);
      const record = await this.store.volumes.create({
        id: volumeId,
        name: request.name,
        sizeBytes: request.sizeBytes,
        replicationFactor: request.replicationFactor,
        labels: request.labels,
        nodeSelector: request.nodeSelector,
        replicas,
      });
      this.log.info({ volume: request.name, replicas: placement.nodes }, "volume created");
      const volume = this.toVolume(record, nodes);
      return placement.warnings.length === 0 ? volume : { ...volume, warnings: placement.warnings };
    } catch (error) {
      await Promise.allSettled(
        made.map((r) => this.destroyReplica(nodes.get(r.node)!, volumeId, r.replicaId)),
      );
      if (error instanceof RecordExistsError) {
        throw new StrataError("ALREADY_EXISTS", `volume "${request.name}" already exists`);
      }
      throw error;
    }
  }

  /** Runs `fill` on handles to the new replicas (at their first epoch), then flushes them. */
  private async fillReplicas(
    volumeId: string,
    replicas: readonly { node: string }[],
    nodes: Map<string, NodeRecord>,
    fill: FillReplicas,
  ): Promise<void> {
    const handles: ReplicaHandle[] = [];
    try {
      for (const replica of replicas) handles.push(await this.handleOn(nodes.get(replica.node)!, volumeId));
      await fill(handles);
      await Promise.all(handles.map((handle) => handle.flush(FIRST_EPOCH)));
    } finally {
      await Promise.allSettled(handles.map((handle) => handle.close()));
    }
  }

  /** The same replica administration here and on a peer: locally directly, remotely over the protocol. */
  private admin<T>(node: NodeRecord, work: (admin: ReplicaLifecycle) => Promise<T>): Promise<T> {
    return node.id === this.identity.nodeId ? work(this.local) : this.peers.call(node, work);
  }

  private async createReplica(node: NodeRecord, spec: ReplicaSpec): Promise<void> {
    await this.admin(node, (admin) => admin.createReplica(spec));
  }

  private async destroyReplica(node: NodeRecord, volumeId: string, replicaId: string): Promise<void> {
    await this.admin(node, (admin) => admin.deleteReplica(volumeId, replicaId));
  }

  /** Grows the volume on every replica (see VolumeCoordinator.resize); it must be attached here. */
  async resizeVolume(name: string, sizeBytes: number): Promise<Volume> {
    return this.lock(name).run(async () => {
      const { coordinator } = this.attachedHere(name, "resize it");
      if (sizeBytes < coordinator.sizeBytes) {
        throw invalid(
          `cannot shrink volume "${name}" from ${formatSize(coordinator.sizeBytes)} to ${formatSize(sizeBytes)}: volumes only grow`,
        );
      }
      await coordinator.resize(sizeBytes);
      return this.toVolume(await this.record(name), await this.nodes());
    });
  }

  /** The volume's coordinator on this node, or a conflict saying where to attach it to `doWhat`. */
  private attachedHere(name: string, doWhat: string): AttachedVolume {
    const attached = this.attached.get(name);
    if (attached === undefined) {
      throw conflict(`volume "${name}" must be attached to ${this.identity.nodeId} to ${doWhat}`);
    }
    return attached;
  }

  private async snapshotRecord(volume: VolumeRecord, snapshot: string) {
    try {
      return await this.store.snapshots.get(volume.id, snapshot);
    } catch (error) {
      if (error instanceof RecordNotFoundError) throw notFound(`snapshot "${volume.name}@${snapshot}"`);
      throw error;
    }
  }

  async deleteVolume(name: string): Promise<void> {
    await this.lock(name).run(async () => {
      const record = await this.record(name);
      if (record.attachedNode !== null) {
        throw conflict(
          `cannot delete volume "${name}": it is attached to ${record.attachedNode}; detach it first`,
        );
      }
      // The record goes first: once it is gone no coordinator can attach, and leftover replicas
      // are unreachable garbage rather than a half-deleted volume.
      await this.store.volumes.delete(record.id, record.epoch);
      const nodes = await this.nodes();
      const results = await Promise.allSettled(
        record.replicas.map((replica) => {
          const node = nodes.get(replica.node);
          return node === undefined
            ? Promise.resolve()
            : this.destroyReplica(node, record.id, replica.replicaId);
        }),
      );
      for (const result of results) {
        if (result.status === "rejected")
          this.log.warn({ err: result.reason, volume: name }, "a replica was left behind");
      }
      this.log.info({ volume: name }, "volume deleted");
    });
  }

  private attachment(name: string): Attachment {
    return describeAttachment(this.identity, this.endpoints, name);
  }

  /**
   * Attaches the volume here: a coordinator over its replicas takes the volume's epoch with a CAS,
   * which fences any coordinator still running on another node (invariant 5).
   */
  async attachVolume(name: string): Promise<Attachment> {
    return this.lock(name).run(async () => {
      if (this.attached.has(name)) return this.attachment(name);
      const record = await this.record(name);
      const coordinator = await this.coordinatorFor(record);
      try {
        // Still recorded as attached: its coordinator died or is being fenced, not detached.
        await coordinator.attach({ reconcile: record.attachedNode !== null });
      } catch (error) {
        await coordinator.close();
        if (error instanceof EpochConflictError) {
          throw conflict(`volume "${name}" changed while attaching; try again`);
        }
        throw error;
      }
      this.attached.set(name, { coordinator, leases: 0 });
      this.log.info({ volume: name, epoch: coordinator.epoch }, "volume attached");
      return this.attachment(name);
    });
  }

  /** A coordinator's handle on the volume's replica on `node`: direct here, over the protocol elsewhere. */
  private async handleOn(node: NodeRecord, volumeId: string): Promise<ReplicaHandle> {
    if (node.id !== this.identity.nodeId) return this.peers.open(node, volumeId);
    const local = this.local.get(volumeId);
    if (local === undefined)
      throw new StrataError("NOT_FOUND", `no replica of volume ${volumeId} on this node`);
    return localReplicaHandle(local, this.local);
  }

  private async coordinatorFor(record: VolumeRecord): Promise<VolumeCoordinator> {
    const nodes = await this.nodes();
    const replicas = [];
    for (const replica of record.replicas) {
      if (replica.state === "failed") continue;
      const node = nodes.get(replica.node);
      let handle: ReplicaHandle;
      try {
        if (node === undefined) throw new Error(`node ${replica.node} is not registered`);
        handle = await this.handleOn(node, record.id);
      } catch (error) {
        // Unreachable now: attach() removes it from the set with the epoch bump.
        this.log.warn(
          { err: error, node: replica.node, volume: record.name },
          "replica unreachable at attach",
        );
        handle = unreachableHandle(error);
      }
      replicas.push({ replicaId: replica.replicaId, nodeId: replica.node, state: replica.state, handle });
    }
    return new VolumeCoordinator({
      volumeId: record.id,
      sizeBytes: record.sizeBytes,
      epoch: record.epoch,
      replicas,
      membership: new StoreMembership(this.store.volumes, record.id, this.identity.nodeId),
      log: this.log,
      checkpointIntervalMs: this.timing.checkpointIntervalMs,
    });
  }

  async detachVolume(name: string): Promise<void> {
    await this.lock(name).run(async () => {
      const attached = this.attached.get(name);
      if (attached === undefined) return;
      if (attached.leases > 0) {
        throw conflict(
          `cannot detach volume "${name}": ${attached.leases} NBD client connection(s) are still open; disconnect them first`,
        );
      }
      await attached.coordinator.flush();
      const epoch = attached.coordinator.epoch;
      await attached.coordinator.close();
      this.attached.delete(name);
      const record = await this.record(name);
      await this.store.volumes.updateIfEpoch(record.id, epoch, { attachedNode: null });
      this.log.info({ volume: name }, "volume detached");
    });
  }

  /**
   * Adds replicas (rebuilt while I/O goes on) or drops them; the volume must be attached here.
   * Returns once every added replica is in sync. Failed replicas whose node is back with their
   * data are resynced first (only what changed is copied); new ones are placed for the rest.
   */
  async updateReplication(name: string, replicationFactor: number): Promise<Volume> {
    return this.lock(name).run(async () => {
      const attached = this.attached.get(name);
      if (attached === undefined) {
        throw conflict(`volume "${name}" must be attached to ${this.identity.nodeId} to change its replicas`);
      }
      const coordinator = attached.coordinator;
      await this.settleRebuilds(coordinator);
      let record = await this.record(name);
      const live = liveCount(record);
      const warnings: string[] = [];
      if (replicationFactor < live) {
        await this.dropReplicas(record, coordinator, live - replicationFactor);
      } else if (replicationFactor > live) {
        const resyncs = await this.resyncReturning(record, coordinator, replicationFactor - live);
        for (const rebuild of resyncs) await rebuild.done;
        const nodes = await this.nodes();
        record = await this.record(name);
        for (let count = liveCount(record); count < replicationFactor; count++) {
          warnings.push(...(await this.addNewReplica(await this.record(name), coordinator, nodes)));
        }
      }
      const volume = this.toVolume(await this.record(name), await this.nodes());
      return warnings.length === 0 ? volume : { ...volume, warnings };
    });
  }

  /** Waits for the volume's running rebuilds and resyncs (their outcome is in the record). */
  private async settleRebuilds(coordinator: VolumeCoordinator): Promise<void> {
    const running = coordinator.replicas().flatMap((replica) => coordinator.rebuild(replica.replicaId) ?? []);
    await Promise.allSettled(running.map((rebuild) => rebuild.done));
  }

  /**
   * Places one new replica, creates it empty on its node and rebuilds it; resolves once it is in
   * sync, with the placement's warnings (replicas sharing a zone).
   */
  private async addNewReplica(
    record: VolumeRecord,
    coordinator: VolumeCoordinator,
    nodes: Map<string, NodeRecord>,
  ): Promise<string[]> {
    const placement = requirePlacement(placeAdditionalReplica(record, await this.clusterView()));
    for (const warning of placement.warnings) this.log.warn({ volume: record.name }, warning);
    const node = nodes.get(placement.nodes[0]!)!;
    // The node may still hold a failed replica that cannot be resynced: it is replaced.
    const stale = record.replicas.find((replica) => replica.node === node.id && replica.state === "failed");
    if (stale !== undefined) await this.destroyReplica(node, record.id, stale.replicaId);
    const replicaId = randomUUID();
    await this.createReplica(node, {
      volumeId: record.id,
      replicaId,
      sizeBytes: record.sizeBytes,
      epoch: FIRST_EPOCH,
    });
    const handle = await this.handleOn(node, record.id);
    const rebuild = coordinator.addReplica({ replicaId, nodeId: node.id, handle });
    this.log.info({ volume: record.name, node: node.id }, "replica added; rebuilding");
    await rebuild.done;
    return placement.warnings;
  }

  /**
   * Drops `count` replicas that are not failed, the least useful first: rebuilding, then in sync
   * on other nodes (the local one serves reads). Each leaves the set by CAS before its data is
   * deleted.
   */
  private async dropReplicas(record: VolumeRecord, coordinator: VolumeCoordinator, count: number) {
    const usefulness = (replica: VolumeRecord["replicas"][number]) =>
      replica.state === "rebuilding" ? 0 : replica.node === this.identity.nodeId ? 2 : 1;
    const doomed = record.replicas
      .filter((replica) => replica.state !== "failed")
      .sort((a, b) => usefulness(a) - usefulness(b))
      .slice(0, count);
    const nodes = await this.nodes();
    for (const replica of doomed) {
      await coordinator.dropReplica(replica.replicaId);
      const node = nodes.get(replica.node);
      if (node !== undefined) {
        await this.destroyReplica(node, record.id, replica.replicaId).catch((error: unknown) =>
          this.log.warn(
            { err: error, volume: record.name, node: node.id },
            "a dropped replica was left behind",
          ),
        );
      }
      this.log.info({ volume: record.name, node: replica.node }, "replica dropped");
    }
  }

  /**
   * Starts a resync of up to `wanted` failed replicas whose node is up and still holds that very
   * replica (its agent restarted, a partition healed); returns the resyncs started.
   */
  private async resyncReturning(
    record: VolumeRecord,
    coordinator: VolumeCoordinator,
    wanted: number,
  ): Promise<Rebuild[]> {
    const nodes = await this.nodes();
    const cluster = { heartbeatTimeoutMs: this.timing.heartbeatTimeoutMs, now: new Date() };
    const started: Rebuild[] = [];
    for (const replica of record.replicas) {
      if (started.length >= wanted) break;
      const node = nodes.get(replica.node);
      if (replica.state !== "failed" || node === undefined || whyDown(node, cluster) !== undefined) continue;
      if ((this.resyncRetryAt.get(replica.replicaId) ?? 0) > Date.now()) continue;
      const handle = await this.returningHandle(node, record.id, replica.replicaId);
      if (handle === undefined) continue;
      const rebuild = coordinator.resyncReplica({ replicaId: replica.replicaId, nodeId: node.id, handle });
      this.log.info({ volume: record.name, node: node.id }, "a failed replica is back; resyncing it");
      rebuild.done.then(
        () => this.resyncRetryAt.delete(replica.replicaId),
        () => this.resyncRetryAt.set(replica.replicaId, Date.now() + RESYNC_RETRY_MS),
      );
      started.push(rebuild);
    }
    return started;
  }

  /** A handle on `replicaId` when `node` still holds that very replica (not another, not none). */
  private async returningHandle(
    node: NodeRecord,
    volumeId: string,
    replicaId: string,
  ): Promise<ReplicaHandle | undefined> {
    try {
      const held = await this.admin(node, async (admin) => admin.listReplicas(volumeId));
      return held[0]?.replicaId === replicaId ? await this.handleOn(node, volumeId) : undefined;
    } catch (error) {
      this.log.debug(
        { err: error, node: node.id, volume: volumeId },
        "a failed replica's node is not reachable yet",
      );
      return undefined;
    }
  }

  /**
   * The background half of recovery without a human, for each attached volume: short of its
   * replication factor, its returning replicas are resynced; at it (a replacement is in sync), its
   * failed replicas are dropped from the record and their data deleted where the node answers. A
   * volume busy with an operator's change is left for the next round.
   */
  private tendReplicaSets(): void {
    if (this.scanning) return;
    this.scanning = true;
    void (async () => {
      for (const [name, attached] of this.attached) {
        const lock = this.lock(name);
        if (lock.busy || !LIVE_STATES.has(attached.coordinator.state)) continue;
        await lock
          .run(async () => {
            const record = await this.record(name);
            const missing = record.replicationFactor - liveCount(record);
            if (missing > 0) await this.resyncReturning(record, attached.coordinator, missing);
            else await this.dropSurplusFailed(record, attached.coordinator);
          })
          .catch((error: unknown) =>
            this.log.warn({ err: error, volume: name }, "tending the replica set failed"),
          );
      }
    })().finally(() => {
      this.scanning = false;
    });
  }

  private async dropSurplusFailed(record: VolumeRecord, coordinator: VolumeCoordinator): Promise<void> {
    const failed = record.replicas.filter((replica) => replica.state === "failed");
    if (failed.length === 0) return;
    const nodes = await this.nodes();
    for (const replica of failed) {
      await coordinator.dropReplica(replica.replicaId);
      this.log.info(
        { volume: record.name, node: replica.node },
        "a failed replica is no longer needed; dropped",
      );
      const node = nodes.get(replica.node);
      // Where the node does not answer, its own orphan sweep deletes the data later.
      if (node !== undefined) await this.destroyReplica(node, record.id, replica.replicaId).catch(() => {});
    }
  }

  /**
   * Deletes this node's replicas that no volume record has listed for the grace period: what a
   * delete, replacement or drop could not remove while this node was away.
   */
  private sweepOrphans(): void {
    if (this.sweeping) return;
    this.sweeping = true;
    void (async () => {
      const now = Date.now();
      const seen = new Set<string>();
      for (const replica of this.local.list()) {
        if (this.local.holder(replica.volumeId) !== undefined) continue;
        const record = await this.store.volumes.get(replica.volumeId).catch((error: unknown) => {
          if (error instanceof RecordNotFoundError) return undefined;
          throw error;
        });
        if (record?.replicas.some((listed) => listed.replicaId === replica.replicaId)) continue;
        seen.add(replica.replicaId);
        const since = this.orphanSince.get(replica.replicaId) ?? now;
        this.orphanSince.set(replica.replicaId, since);
        if (now - since < this.timing.orphanGraceMs) continue;
        await this.local.deleteReplica(replica.volumeId, replica.replicaId);
        this.log.warn(
          { volumeId: replica.volumeId, replica: replica.replicaId, unlistedForMs: now - since },
          "deleted a replica no volume lists any more",
        );
      }
      for (const id of this.orphanSince.keys()) if (!seen.has(id)) this.orphanSince.delete(id);
    })()
      .catch((error: unknown) => this.log.warn({ err: error }, "looking for orphaned replicas failed"))
      .finally(() => {
        this.sweeping = false;
      });
  }

  async listSnapshots(volume: string): Promise<Snapshot[]> {
    const record = await this.record(volume);
    const local = this.local.get(record.id);
    return (await this.store.snapshots.list(record.id)).map((snapshot) => ({
      id: snapshot.id,
      name: snapshot.name,
      volume,
      createdAt: snapshot.createdAt,
      exclusiveBytes: local?.snapshots().some((s) => s.id === snapshot.id)
        ? local.exclusiveBytes(snapshot.id)
        : 0,
    }));
  }

  /** Taken by the coordinator at one point of the write stream on every replica. */
  async createSnapshot(volume: string, name?: string): Promise<Snapshot> {
    return this.lock(volume).run(async () => {
      const attached = this.attached.get(volume);
      if (attached === undefined) {
        throw conflict(`volume "${volume}" must be attached to ${this.identity.nodeId} to snapshot it`);
      }
      const record = await this.record(volume);
      const taken = new Set((await this.store.snapshots.list(record.id)).map((snapshot) => snapshot.name));
      if (name !== undefined && taken.has(name)) {
        throw new StrataError("ALREADY_EXISTS", `snapshot "${volume}@${name}" already exists`);
      }
      const snapshotName = name ?? defaultSnapshotName(taken);
      // On every replica first, recorded last: a snapshot that is listed always exists.
      const id = randomUUID();
      const info = await attached.coordinator.snapshot({ id, name: snapshotName });
      await this.store.snapshots.create({
        volumeId: record.id,
        name: snapshotName,
        sizeBytes: record.sizeBytes,
        id,
      });
      return { id, name: snapshotName, volume, createdAt: info.createdAt, exclusiveBytes: 0 };
    });
  }

  /**
   * Unlisted first, then deleted on every replica: a listed snapshot always exists, and a crash in
   * between leaves only a layer no record names.
   */
  async deleteSnapshot(volume: string, snapshot: string): Promise<void> {
    await this.lock(volume).run(async () => {
      const { coordinator } = this.attachedHere(volume, "delete its snapshots");
      const record = await this.record(volume);
      const found = await this.snapshotRecord(record, snapshot);
      await this.store.snapshots.delete(record.id, found.name);
      await coordinator.deleteSnapshot(found.id);
      this.log.info({ volume, snapshot }, "snapshot deleted");
    });
  }

  /**
   * A new volume, placed and replicated like the source, holding the snapshot's view: its data is
   * read from a replica that has the snapshot and written to every new replica before the new
   * volume is recorded, so it is listed only once complete.
   */
  async cloneSnapshot(volume: string, snapshot: string, target: string, labels: Labels): Promise<Volume> {
    return this.lock(volume).run(async () => {
      const { coordinator } = this.attachedHere(volume, "clone its snapshots");
      const record = await this.record(volume);
      const found = await this.snapshotRecord(record, snapshot);
      const source = await coordinator.snapshotReader(found.id);
      const request = {
        name: target,
        sizeBytes: found.sizeBytes,
        labels,
        replicationFactor: record.replicationFactor,
        nodeSelector: record.nodeSelector,
      };
      const cloned = await this.lock(target).run(() =>
        this.createUnlocked(request, (handles) => copyInto(source, handles)),
      );
      this.log.info({ volume, snapshot, target }, "snapshot cloned");
      return cloned;
    });
  }

  /** Reverts every in-sync replica at once; attached here, with no NBD client connected. */
  async revertVolume(volume: string, snapshot: string): Promise<Volume> {
    return this.lock(volume).run(async () => {
      const attached = this.attachedHere(volume, "revert it");
      if (attached.leases > 0) {
        throw conflict(
          `cannot revert volume "${volume}": ${attached.leases} NBD client connection(s) are open; disconnect them first`,
        );
      }
      const record = await this.record(volume);
      const found = await this.snapshotRecord(record, snapshot);
      await attached.coordinator.revert(found.id);
      this.log.info({ volume, snapshot }, "volume reverted to snapshot");
      return this.toVolume(await this.record(volume), await this.nodes());
    });
  }

  names(): string[] {
    return [...this.attached.keys()];
  }

  open(name: string): ExportLease | undefined {
    const attached = this.attached.get(name);
    if (attached === undefined) return undefined;
    const description = `Strata volume ${name} (${formatSize(attached.coordinator.sizeBytes)}, replicated)`;
    return countedLease(name, description, attached.coordinator, attached);
  }

  async close(): Promise<void> {
    clearInterval(this.resyncScan);
    clearInterval(this.orphanSweep);
    for (const attached of this.attached.values()) await attached.coordinator.close();
    this.attached.clear();
  }
}

/** A replica that could not be reached at attach: every call fails, so attach() removes it. */
function unreachableHandle(cause: unknown): ReplicaHandle {
  const fail = () => Promise.reject(cause);
  return {
    local: false,
    read: fail,
    write: fail,
    writeZeroes: fail,
    trim: fail,
    flush: fail,
    snapshot: fail,
    standing: fail,
    setEpoch: fail,
    setRebuilding: fail,
    allocatedRuns: () => undefined,
    changedRuns: fail,
    resize: fail,
    deleteSnapshot: fail,
    revert: fail,
    snapshotRuns: fail,
    readSnapshot: fail,
    close: async () => {},
  };
}

function liveCount(record: VolumeRecord): number {
  return record.replicas.filter((replica) => replica.state !== "failed").length;
}

/** Creating a replica failed because its node could not be reached: place without it. */
class NodeUnreachable extends Error {
  constructor(
    readonly nodeId: string,
    cause: unknown,
  ) {
    super(`node ${nodeId} could not be reached`, { cause });
  }
}

/** Writes a new volume's data into its (empty) replicas, through handles at their first epoch. */
type FillReplicas = (replicas: readonly ReplicaHandle[]) => Promise<void>;

/** Copies a snapshot's data into empty replicas, chunk by chunk, a few chunks at a time. */
async function copyInto(source: SnapshotReader, targets: readonly ReplicaHandle[]): Promise<void> {
  const chunks = chunksOf(source.runs, DEFAULT_CHUNK_BYTES);
  let next = 0;
  const worker = async () => {
    while (next < chunks.length) {
      const { offset, length } = chunks[next++]!;
      const data = await source.read(offset, length);
      await Promise.all(targets.map((target) => target.write(FIRST_EPOCH, offset, data, { fua: false })));
    }
  };
  await Promise.all(Array.from({ length: DEFAULT_COPY_CONCURRENCY }, worker));
}
