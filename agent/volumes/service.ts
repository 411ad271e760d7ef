import { randomUUID } from "node:crypto";
import { conflict, invalid, notFound, StrataError } from "../../core/errors.js";
import {
  type Attachment,
  type Labels,
  MAX_REPLICATION_FACTOR,
  type NodeStatus,
  type Snapshot,
  type Volume,
} from "../../core/model.js";
import { scheduleOfSnapshot } from "../../core/schedule-policies.js";
import { RecordExistsError, RecordNotFoundError } from "../../core/state/errors.js";
import type { NodeRecord, VolumeRecord } from "../../core/state/records.js";
import type { StateStore } from "../../core/state/store.js";
import { formatSize } from "../../core/units.js";
import type { CreateVolume, VolumeService } from "../../core/volume-service.js";
import type { ExportLease, ExportRegistry } from "../exports.js";
import type { Logger } from "../log.js";
import { setPoolGaugeSource } from "../metrics.js";
import {
  defaultSnapshotName,
  describeAttachment,
  describeNode,
  type Endpoints,
  type NodeIdentity,
} from "../node-identity.js";
import type { PeerReplicas } from "../peer-replicas.js";
import type { Pool } from "../pool.js";
import type { SnapshotReader, VolumeCoordinator } from "../replication/coordinator/coordinator.js";
import { snapshotTogether } from "../replication/coordinator/group-snapshot.js";
import { type AttachedVolume, AttachmentRegistry } from "./attachments.js";
import { ClusterContext, type ClusterTiming, type LocalReplicas, liveCount } from "./cluster-context.js";
import { OrphanSweeper } from "./orphans.js";
import { copyInto, type FillReplicas, type Provisioned, VolumeProvisioner } from "./provisioner.js";
import { type CopyObserver, type NewReplicaOptions, ReplicaSetReconciler } from "./reconciler.js";

/** A snapshot being taken of a volume whose coordinator is held here. */
interface HeldVolume {
  volume: string;
  volumeId: string;
  coordinator: VolumeCoordinator;
  /** The snapshot's id and name. */
  id: string;
  name: string;
}

/** Which volume a change is of; what else it needs it reads from the record. */
interface VolumeIdentity {
  id: string;
  name: string;
}

/**
 * Every volume, whatever its replication factor, as this node serves the control API: its record
 * lives in the state store, its replicas on the nodes placement chose, and the node a volume is
 * attached to runs its coordinator, which the NBD server exports. Every change of a replica set or
 * attachment is a CAS on the volume's epoch. Changes of one volume run one at a time, under its lock.
 */
export class ClusterVolumes implements VolumeService, ExportRegistry {
  private readonly cluster: ClusterContext;
  private readonly attachments: AttachmentRegistry;
  private readonly provisioner: VolumeProvisioner;
  private readonly reconciler: ReplicaSetReconciler;
  private readonly orphans: OrphanSweeper;
  endpoints: Endpoints = { apiUrl: "", nbdAddress: "", nbdSocket: null };

  constructor(
    private readonly identity: NodeIdentity,
    private readonly pool: Pool,
    private readonly store: StateStore,
    private readonly local: LocalReplicas,
    peers: PeerReplicas,
    timing: ClusterTiming,
    private readonly log: Logger,
  ) {
    this.cluster = new ClusterContext(identity, store, local, peers, timing, log);
    this.attachments = new AttachmentRegistry(this.cluster);
    this.provisioner = new VolumeProvisioner(this.cluster);
    this.reconciler = new ReplicaSetReconciler(this.cluster, this.attachments);
    this.orphans = new OrphanSweeper(this.cluster);
    setPoolGaugeSource({
      usage: () => this.pool.usage(this.provisionedBytes()),
      volumeCount: () => this.local.list().length,
    });
  }

  private provisionedBytes(): number {
    return this.local.list().reduce((sum, replica) => sum + replica.sizeBytes, 0);
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
        // A maintenance attachment a crash cut short is taken over (the replicas reconciled) and
        // released: nobody attached that volume.
        if (volume.maintenance === true) await this.changeVolume(volume.name, "release it", async () => {});
        else await this.attachVolume(volume.name);
      } catch (error) {
        this.log.error({ err: error, volume: volume.name }, "could not re-attach a volume after restart");
      }
    }
  }

  /** Runs `work` under the volume's lock on its coordinator here (see AttachmentRegistry.withCoordinator). */
  private changeVolume<T>(
    name: string,
    doWhat: string,
    work: (attached: AttachedVolume, volume: VolumeIdentity) => Promise<T>,
  ): Promise<T> {
    return this.cluster
      .lock(name)
      .run(() =>
        this.attachments.withCoordinator(name, doWhat, (attached) =>
          work(attached, { id: attached.coordinator.volumeId, name }),
        ),
      );
  }

  private toVolume(record: VolumeRecord, nodes: Map<string, NodeRecord>): Volume {
    const local = this.local.get(record.id);
    const attachedAt = record.attachedNode === null ? undefined : nodes.get(record.attachedNode);
    const coordinator = this.attachments.coordinatorOf(record.name);
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
        const progress = coordinator?.rebuild(replica.replicaId)?.progress;
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

  private async describe({ record, warnings }: Provisioned): Promise<Volume> {
    const volume = this.toVolume(record, await this.cluster.nodes());
    return warnings.length === 0 ? volume : { ...volume, warnings };
  }

  async nodeStatus(): Promise<NodeStatus> {
    return describeNode(
      this.identity,
      this.endpoints,
      this.pool.usage(this.provisionedBytes()),
      this.local.list().length,
    );
  }

  async listVolumes(): Promise<Volume[]> {
    const [records, nodes] = await Promise.all([this.store.volumes.list(), this.cluster.nodes()]);
    return records.map((record) => this.toVolume(record, nodes)).sort((a, b) => a.name.localeCompare(b.name));
  }

  async getVolume(name: string): Promise<Volume> {
    return this.toVolume(await this.cluster.record(name), await this.cluster.nodes());
  }

  /**
   * With `fill`, the volume's data comes from elsewhere (a cloudsnap): it is written into the new
   * replicas before the volume is recorded, so the volume is listed only once complete, and a
   * failure leaves nothing behind.
   */
  async createVolume(
    request: CreateVolume,
    from?: { fill: FillReplicas; volumeId: string },
  ): Promise<Volume> {
    return this.describe(
      await this.cluster
        .lock(request.name)
        .run(() => this.provisioner.create(request, from?.fill, from?.volumeId)),
    );
  }

  /** Grows the volume on every replica (see VolumeCoordinator.resize). */
  async resizeVolume(name: string, sizeBytes: number): Promise<Volume> {
    await this.changeVolume(name, "resize it", async ({ coordinator }) => {
      if (sizeBytes < coordinator.sizeBytes) {
        throw invalid(
          `cannot shrink volume "${name}" from ${formatSize(coordinator.sizeBytes)} to ${formatSize(sizeBytes)}: volumes only grow`,
        );
      }
      await coordinator.resize(sizeBytes);
      this.log.info({ volume: name, sizeBytes }, "volume resized");
    });
    return this.getVolume(name);
  }

  async deleteVolume(name: string): Promise<void> {
    await this.cluster.lock(name).run(async () => {
      const record = await this.cluster.record(name);
      if (record.attachedNode !== null) {
        throw conflict(
          `cannot delete volume "${name}": it is attached to ${record.attachedNode}; detach it first`,
        );
      }
      // The record goes first: once it is gone no coordinator can attach, and leftover replicas
      // are unreachable garbage rather than a half-deleted volume.
      await this.store.volumes.delete(record.id, record.epoch);
      // Its policy goes with it: an assignment left behind would keep `policy delete` refused for a
      // volume nobody can see (the cloudsnap workflow drops any a crash here leaves).
      await this.store.policies.unassign(record.id);
      const nodes = await this.cluster.nodes();
      const results = await Promise.allSettled(
        record.replicas.map((replica) => {
          const node = nodes.get(replica.node);
          return node === undefined
            ? Promise.resolve()
            : this.cluster.destroyReplica(node, record.id, replica.replicaId);
        }),
      );
      for (const result of results) {
        if (result.status === "rejected")
          this.log.warn({ err: result.reason, volume: name }, "a replica was left behind");
      }
      this.log.info({ volume: name }, "volume deleted");
    });
  }

  /**
   * Attaches the volume here, fencing any coordinator still running on another node (invariant 5).
   * A maintenance attachment in progress here becomes the exported one.
   */
  async attachVolume(name: string): Promise<Attachment> {
    return this.cluster.lock(name).run(async () => {
      const record = await this.cluster.record(name);
      const attached = (await this.attachments.here(record)) ?? (await this.attachments.attach(record, true));
      attached.exported = true;
      return describeAttachment(this.identity, this.endpoints, name);
    });
  }

  async detachVolume(name: string): Promise<void> {
    await this.cluster.lock(name).run(async () => {
      const record = await this.cluster.record(name);
      const attached = await this.attachments.here(record);
      if (attached !== undefined) {
        if (attached.leases > 0) {
          throw conflict(
            `cannot detach volume "${name}": ${attached.leases} NBD client connection(s) are still open; disconnect them first`,
          );
        }
        await this.attachments.release(name, attached);
        return;
      }
      if (record.attachedNode === null) return;
      if (record.attachedNode !== this.identity.nodeId) {
        throw conflict(
          `volume "${name}" is attached to ${record.attachedNode}, not ${this.identity.nodeId}: detach it there (--node ${record.attachedNode})`,
        );
      }
      // Recorded here with no coordinator (its re-attach after a restart failed): only the record to clear.
      await this.store.volumes.updateIfEpoch(record.id, record.epoch, {
        attachedNode: null,
        maintenance: false,
      });
      this.log.info({ volume: name }, "volume detached");
    });
  }

  /**
   * Adds replicas (rebuilt while I/O goes on) or drops them, on a volume attached here or nowhere;
   * at the volume's own factor it repairs it. Returns once every added replica is in sync.
   */
  async updateReplication(name: string, replicationFactor: number, observe?: CopyObserver): Promise<Volume> {
    const warnings = await this.changeVolume(name, "change its replicas", ({ coordinator }) =>
      this.reconciler.reach(name, coordinator, replicationFactor, observe === undefined ? {} : { observe }),
    );
    const volume = await this.getVolume(name);
    return warnings.length === 0 ? volume : { ...volume, warnings };
  }

  /** Back to the volume's replication factor: lost replicas are replaced, returning ones resynced. */
  async repairVolume(name: string, observe?: CopyObserver): Promise<void> {
    await this.changeVolume(name, "repair it", async ({ coordinator, exported }) => {
      // A replica on a lost node counts as in sync in the record until the coordinator next writes
      // to it; moving every replica to a new epoch now fails the unreachable ones, so they are
      // replaced. A maintenance attachment has just done the same by attaching.
      if (exported) await coordinator.checkpoint();
      return this.reconciler.reach(
        name,
        coordinator,
        (await this.cluster.record(name)).replicationFactor,
        observe === undefined ? {} : { observe },
      );
    });
  }

  /**
   * One more replica, on `targetNode` when given (if it qualifies), rebuilt while I/O goes on; the
   * factor rises with it, so a volume at the largest factor is refused (a move keeps the factor).
   */
  async addReplica(name: string, options: NewReplicaOptions = {}): Promise<void> {
    await this.changeVolume(name, "add a replica", async ({ coordinator }) => {
      const live = liveCount(await this.cluster.record(name));
      if (live >= MAX_REPLICATION_FACTOR) {
        throw conflict(
          `cannot add a replica to volume "${name}": it has ${live} live replicas, the most a volume may have; move one instead (a move-replica operation)`,
        );
      }
      return this.reconciler.reach(name, coordinator, live + 1, options);
    });
  }

  /**
   * Moves a replica to `targetNode` (if it qualifies): the new one is rebuilt while I/O goes on,
   * then the old one is dropped; the factor stays. Running it again finishes a move cut short.
   */
  async moveReplica(
    name: string,
    replicaId: string,
    targetNode: string,
    observe?: CopyObserver,
  ): Promise<void> {
    await this.changeVolume(name, "move a replica", ({ coordinator }) =>
      this.reconciler.move(name, coordinator, replicaId, targetNode, observe),
    );
  }

  async dropReplica(name: string, replicaId?: string): Promise<void> {
    await this.changeVolume(name, "drop a replica", ({ coordinator }) =>
      this.reconciler.dropOne(name, coordinator, replicaId),
    );
  }

  async rebuildReplica(name: string, replicaId: string, observe?: CopyObserver): Promise<void> {
    await this.changeVolume(name, "rebuild a replica", ({ coordinator }) =>
      this.reconciler.rebuild(name, coordinator, replicaId, observe),
    );
  }

  /**
   * The copy of an exported volume goes on outside the volume's lock (its coordinator stays), so
   * snapshots and other changes need not wait for it; a maintenance attachment ends with the copy.
   */
  async resyncReplica(name: string, replicaId: string, observe?: CopyObserver): Promise<void> {
    const copy = await this.changeVolume(name, "resync a replica", async (attached) => {
      const rebuild = await this.reconciler.startResync(name, attached.coordinator, replicaId);
      if (rebuild !== undefined) observe?.(rebuild);
      if (!attached.exported) await rebuild?.done;
      return rebuild;
    });
    await copy?.done;
  }

  private async snapshotRecord(volume: VolumeIdentity, snapshot: string) {
    try {
      return await this.store.snapshots.get(volume.id, snapshot);
    } catch (error) {
      if (error instanceof RecordNotFoundError) throw notFound(`snapshot "${volume.name}@${snapshot}"`);
      throw error;
    }
  }

  async listSnapshots(volume: string): Promise<Snapshot[]> {
    const record = await this.cluster.record(volume);
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
    if (name !== undefined && scheduleOfSnapshot(name) !== undefined) {
      // Retention deletes what carries a schedule's name: a snapshot taken by hand must never be one.
      throw invalid(
        `snapshot name ${name} has the form policy schedules name their snapshots by (<schedule>-<UTC minute>), and their retention would delete it; choose another name`,
      );
    }
    return this.changeVolume(volume, "snapshot it", async ({ coordinator }, { id: volumeId }) => {
      const snapshotName =
        name ?? defaultSnapshotName(new Set((await this.store.snapshots.list(volumeId)).map((s) => s.name)));
      const id = randomUUID();
      const info = await coordinator.snapshot({ id, name: snapshotName });
      await this.recordSnapshots([{ volume, volumeId, coordinator, id, name: snapshotName }]);
      this.log.info({ volume, snapshot: snapshotName }, "snapshot created");
      return { id, name: snapshotName, volume, createdAt: info.createdAt, exclusiveBytes: 0 };
    });
  }

  /**
   * Snapshots of several volumes at one point of their write streams (group-snapshot.ts), each
   * named `name`: what a database whose data and log are on two volumes needs. Their coordinators
   * must be here: a volume attached to another node is refused, naming it (a database's volumes
   * are attached where it runs); one attached nowhere gets a maintenance attachment. The volumes'
   * locks are taken in name order, so two groups sharing volumes never wait on each other.
   */
  async createGroupSnapshot(volumes: readonly string[], name: string): Promise<Snapshot[]> {
    const names = [...new Set(volumes)].sort();
    if (names.length !== volumes.length) throw invalid(`a group names a volume twice: ${volumes.join(", ")}`);
    const group = async (index: number, held: HeldVolume[]): Promise<Snapshot[]> => {
      if (index < names.length) {
        return this.changeVolume(names[index]!, "snapshot it with its group", ({ coordinator }, { id }) =>
          group(index + 1, [
            ...held,
            { volume: names[index]!, volumeId: id, coordinator, id: randomUUID(), name },
          ]),
        );
      }
      const infos = await snapshotTogether(
        held.map(({ coordinator, id }) => ({ coordinator, request: { id, name } })),
      );
      await this.recordSnapshots(held);
      this.log.info({ volumes: names, snapshot: name }, "group snapshot created");
      return held.map(({ volume, id }, i) => ({
        id,
        name,
        volume,
        createdAt: infos[i]!.createdAt,
        exclusiveBytes: 0,
      }));
    };
    return group(0, []);
  }

  /**
   * On every replica first, recorded last: a snapshot that is listed always exists. The record's
   * conditional put is what keeps a name once per volume; snapshots whose records cannot all be
   * written are unlisted and deleted again, so the common case costs no read before the snapshot.
   */
  private async recordSnapshots(taken: readonly HeldVolume[]): Promise<void> {
    const recorded: HeldVolume[] = [];
    try {
      for (const snapshot of taken) {
        await this.store.snapshots.create({
          volumeId: snapshot.volumeId,
          name: snapshot.name,
          sizeBytes: snapshot.coordinator.sizeBytes,
          id: snapshot.id,
        });
        recorded.push(snapshot);
      }
    } catch (error) {
      for (const snapshot of taken) {
        if (recorded.includes(snapshot))
          await this.store.snapshots.delete(snapshot.volumeId, snapshot.name).catch(() => undefined);
        await snapshot.coordinator
          .deleteSnapshot(snapshot.id)
          .catch((cleanup: unknown) =>
            this.log.warn(
              { err: cleanup, volume: snapshot.volume, snapshot: snapshot.name },
              "an unrecorded snapshot was left on the replicas",
            ),
          );
      }
      if (error instanceof RecordExistsError) {
        const refused = taken[recorded.length]!;
        throw new StrataError(
          "ALREADY_EXISTS",
          `snapshot "${refused.volume}@${refused.name}" already exists`,
        );
      }
      throw error;
    }
  }

  /**
   * Unlisted first, then deleted on every replica: a listed snapshot always exists, and a crash in
   * between leaves only a layer no record names.
   */
  async deleteSnapshot(volume: string, snapshot: string): Promise<void> {
    await this.changeVolume(volume, "delete its snapshots", async ({ coordinator }, record) => {
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
    const cloned = await this.changeVolume(
      volume,
      "clone its snapshots",
      async ({ coordinator }, identity) => {
        const found = await this.snapshotRecord(identity, snapshot);
        const record = await this.cluster.record(volume);
        const source = await coordinator.snapshotReader(found.id);
        const request = {
          name: target,
          sizeBytes: found.sizeBytes,
          labels,
          replicationFactor: record.replicationFactor,
          nodeSelector: record.nodeSelector,
        };
        return this.cluster
          .lock(target)
          .run(() => this.provisioner.create(request, (handles) => copyInto(source, handles)));
      },
    );
    this.log.info({ volume, snapshot, target }, "snapshot cloned");
    return this.describe(cloned);
  }

  /**
   * Runs `work` with a reader of a snapshot, from an in-sync replica that has it; with `since` (an
   * older snapshot) the reader's runs are the blocks changed since then. An exported volume is read
   * outside its lock, so its other changes need not wait for a long read (its coordinator stays);
   * a volume attached nowhere keeps its maintenance attachment, and its lock, until `work` is done.
   */
  async withSnapshotReader<T>(
    name: string,
    snapshotId: string,
    since: string | undefined,
    work: (reader: SnapshotReader) => Promise<T>,
  ): Promise<T> {
    const held = await this.changeVolume(
      name,
      "read a snapshot",
      async ({ coordinator, exported }): Promise<{ reader: SnapshotReader } | { done: T }> => {
        const reader = await coordinator.snapshotReader(snapshotId, since);
        return exported ? { reader } : { done: await work(reader) };
      },
    );
    return "done" in held ? held.done : work(held.reader);
  }

  /** Reverts every in-sync replica at once, with no NBD client connected. */
  async revertVolume(volume: string, snapshot: string): Promise<Volume> {
    await this.changeVolume(volume, "revert it", async (attached, record) => {
      if (attached.leases > 0) {
        throw conflict(
          `cannot revert volume "${volume}": ${attached.leases} NBD client connection(s) are open; disconnect them first`,
        );
      }
      const found = await this.snapshotRecord(record, snapshot);
      await attached.coordinator.revert(found.id);
      this.log.info({ volume, snapshot }, "volume reverted to snapshot");
    });
    return this.getVolume(volume);
  }

  names(): string[] {
    return this.attachments.names();
  }

  open(name: string): ExportLease | undefined {
    return this.attachments.open(name);
  }

  async close(): Promise<void> {
    this.reconciler.close();
    this.orphans.close();
    await this.attachments.close();
  }
}
