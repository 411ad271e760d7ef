import { randomUUID } from "node:crypto";
import { conflict, notFound } from "../../core/errors.js";
import { whyDown } from "../../core/liveness.js";
import { placeAdditionalReplica, requirePlacement } from "../../core/placement.js";
import type { AddReplicaOptions } from "../../core/replica-set.js";
import type { NodeRecord, VolumeRecord } from "../../core/state/records.js";
import { FIRST_EPOCH } from "../../core/state/volumes.js";
import type { VolumeCoordinator } from "../replication/coordinator/coordinator.js";
import type { Rebuild } from "../replication/coordinator/rebuild.js";
import type { AttachmentRegistry } from "./attachments.js";
import { type ClusterContext, liveCount } from "./cluster-context.js";

/** How often attached volumes are checked for failed replicas whose node is back with their data. */
const RESYNC_SCAN_MS = 3000;
/** After a resync failed, the same replica is tried again no sooner than this. */
const RESYNC_RETRY_MS = 30_000;

/**
 * Brings a volume's replica set to its replication factor through its coordinator: resyncs
 * returning replicas, places and rebuilds new ones, drops surplus and replaced ones. The operator
 * asks for it (ha-update, repair); in the background it tends every exported volume, which is the
 * half of recovery without a human that runs on the attached node.
 */
export class ReplicaSetReconciler {
  /** Replica id → when a resync of it may be tried again after one failed. */
  private readonly resyncRetryAt = new Map<string, number>();
  private readonly scan: NodeJS.Timeout;
  private scanning = false;

  constructor(
    private readonly cluster: ClusterContext,
    private readonly attachments: AttachmentRegistry,
  ) {
    this.scan = setInterval(() => this.tend(), RESYNC_SCAN_MS);
    this.scan.unref();
  }

  /**
   * Adds replicas (rebuilt while I/O goes on) or drops them until `replicationFactor` replicas are
   * live; returns once every added replica is in sync, with placement's warnings. Failed replicas
   * whose node is back with their data are resynced first (only what changed is copied); new ones
   * are placed for the rest; the failed ones they replace are dropped.
   */
  async reach(
    name: string,
    coordinator: VolumeCoordinator,
    replicationFactor: number,
    options: NewReplicaOptions = {},
  ): Promise<string[]> {
    await settleRebuilds(coordinator);
    let record = await this.cluster.record(name);
    const live = liveCount(record);
    const warnings: string[] = [];
    if (replicationFactor < live) {
      await this.dropReplicas(record, coordinator, live - replicationFactor);
    } else if (replicationFactor > live) {
      const resyncs = await this.resyncReturning(record, coordinator, replicationFactor - live);
      for (const copy of resyncs) options.observe?.(copy);
      for (const rebuild of resyncs) await rebuild.done;
      const nodes = await this.cluster.nodes();
      record = await this.cluster.record(name);
      for (let count = liveCount(record); count < replicationFactor; count++) {
        warnings.push(
          ...(await this.addNewReplica(await this.cluster.record(name), coordinator, nodes, options)),
        );
      }
    }
    // Replaced failed replicas go now: a volume attached nowhere has no tending to drop them later.
    record = await this.cluster.record(name);
    if (liveCount(record) >= replicationFactor) await this.dropFailed(record, coordinator);
    return warnings;
  }

  /**
   * Copies a failed replica again in full, on its own node: a new replica replaces it there (when
   * its data cannot be trusted, or its node came back without it).
   */
  async rebuild(
    name: string,
    coordinator: VolumeCoordinator,
    replicaId: string,
    observe?: CopyObserver,
  ): Promise<void> {
    await settleRebuilds(coordinator);
    const record = await this.cluster.record(name);
    const replica = this.failedReplica(record, replicaId);
    await this.addNewReplica(record, coordinator, await this.cluster.nodes(), {
      targetNode: replica.node,
      ...(observe === undefined ? {} : { observe }),
    });
  }

  /**
   * Starts the resync of one failed replica whose node is back with its data (only what it missed
   * is copied); the caller waits for it, outside the volume's lock when it may. A replica already in
   * sync needs nothing (undefined); one whose copy is under way is waited for, not copied twice.
   */
  async startResync(
    name: string,
    coordinator: VolumeCoordinator,
    replicaId: string,
  ): Promise<Rebuild | undefined> {
    const running = coordinator.rebuild(replicaId);
    if (running !== undefined) return running;
    await settleRebuilds(coordinator);
    const record = await this.cluster.record(name);
    const replica = record.replicas.find((candidate) => candidate.replicaId === replicaId);
    if (replica === undefined) throw notFound(`replica ${replicaId} of volume "${name}"`);
    if (replica.state === "in-sync") return undefined;
    const [started] =
      replica.state === "failed"
        ? await this.resyncReturning({ ...record, replicas: [replica] }, coordinator, 1, { retryNow: true })
        : [];
    if (started === undefined) {
      throw conflict(
        `cannot resync replica ${replicaId} of volume "${name}": ${replica.node} is down or no longer holds it; rebuild it instead`,
      );
    }
    return started;
  }

  /** Drops one replica: the one named, or the least useful (rebuilding first, the local one last). */
  async dropOne(name: string, coordinator: VolumeCoordinator, replicaId?: string): Promise<void> {
    await settleRebuilds(coordinator);
    const record = await this.cluster.record(name);
    if (replicaId === undefined) {
      await this.dropReplicas(record, coordinator, 1);
      return;
    }
    const replica = record.replicas.find((candidate) => candidate.replicaId === replicaId);
    if (replica === undefined) throw notFound(`replica ${replicaId} of volume "${name}"`);
    if (replica.state !== "failed" && liveCount(record) === 1) {
      throw conflict(`cannot drop replica ${replicaId}: it is the last live replica of volume "${name}"`);
    }
    await this.drop(record, coordinator, [replica], "replica dropped");
  }

  /**
   * Moves a replica to `targetNode`: a new one is rebuilt there, keeping the factor, then the old
   * one is dropped, so redundancy never dips. Resumable: a move cut short after its copy (the
   * drop failed, the agent stopped) finds the target's replica in sync and only drops the old one;
   * one that already finished does nothing.
   */
  async move(
    name: string,
    coordinator: VolumeCoordinator,
    replicaId: string,
    targetNode: string,
    observe?: CopyObserver,
  ): Promise<void> {
    await settleRebuilds(coordinator);
    const record = await this.cluster.record(name);
    const leaving = record.replicas.find((replica) => replica.replicaId === replicaId);
    const arrived = record.replicas.some(
      (replica) => replica.node === targetNode && replica.state === "in-sync",
    );
    if (leaving === undefined) {
      if (arrived) return;
      throw notFound(`replica ${replicaId} of volume "${name}"`);
    }
    if (!arrived) {
      await this.addNewReplica(record, coordinator, await this.cluster.nodes(), {
        targetNode,
        ...(observe === undefined ? {} : { observe }),
        keepFactor: true,
      });
    }
    await this.drop(await this.cluster.record(name), coordinator, [leaving], "replica moved away; dropped");
  }

  private failedReplica(record: VolumeRecord, replicaId: string) {
    const replica = record.replicas.find((candidate) => candidate.replicaId === replicaId);
    if (replica === undefined) throw notFound(`replica ${replicaId} of volume "${record.name}"`);
    if (replica.state !== "failed") {
      throw conflict(
        `cannot rebuild replica ${replicaId} of volume "${record.name}": it is ${replica.state}, not failed`,
      );
    }
    return replica;
  }

  /**
   * Places one new replica (on `targetNode` when given, if it qualifies), creates it empty on its
   * node and rebuilds it; resolves once it is in sync, with the placement's warnings (replicas
   * sharing a zone).
   */
  private async addNewReplica(
    record: VolumeRecord,
    coordinator: VolumeCoordinator,
    nodes: Map<string, NodeRecord>,
    { targetNode, observe, keepFactor = false }: NewReplicaOptions & AddReplicaOptions = {},
  ): Promise<string[]> {
    if (targetNode !== undefined && !nodes.has(targetNode)) throw notFound(`node "${targetNode}"`);
    const view = await this.cluster.clusterView();
    const candidates =
      targetNode === undefined
        ? view
        : { ...view, nodes: view.nodes.filter((node) => node.id === targetNode) };
    const placement = requirePlacement(placeAdditionalReplica(record, candidates));
    for (const warning of placement.warnings) this.cluster.log.warn({ volume: record.name }, warning);
    const node = nodes.get(placement.nodes[0]!)!;
    // The node may still hold a replica of this volume that is no live member: a failed one that
    // cannot be resynced, or one the record dropped while the node was away (its zone failed and
    // came back before the orphan sweep). One replica per volume per node: it is replaced.
    const held = await this.cluster.admin(node, async (admin) => admin.listReplicas(record.id));
    for (const stale of held) {
      const member = record.replicas.find((replica) => replica.replicaId === stale.replicaId);
      if (member === undefined || member.state === "failed")
        await this.cluster.destroyReplica(node, record.id, stale.replicaId);
    }
    const replicaId = randomUUID();
    await this.cluster.createReplica(node, {
      volumeId: record.id,
      replicaId,
      sizeBytes: record.sizeBytes,
      epoch: FIRST_EPOCH,
    });
    const handle = await this.cluster.handleOn(node.id, record.id, nodes);
    const rebuild = coordinator.addReplica({ replicaId, nodeId: node.id, handle }, {}, { keepFactor });
    observe?.(rebuild);
    this.cluster.log.info({ volume: record.name, node: node.id }, "replica added; rebuilding");
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
      replica.state === "rebuilding" ? 0 : replica.node === this.cluster.nodeId ? 2 : 1;
    const doomed = record.replicas
      .filter((replica) => replica.state !== "failed")
      .sort((a, b) => usefulness(a) - usefulness(b))
      .slice(0, count);
    await this.drop(record, coordinator, doomed, "replica dropped");
  }

  /** Drops the failed replicas once the volume is at its factor without them. */
  private async dropFailed(record: VolumeRecord, coordinator: VolumeCoordinator): Promise<void> {
    const failed = record.replicas.filter((replica) => replica.state === "failed");
    await this.drop(record, coordinator, failed, "a failed replica is no longer needed; dropped");
  }

  /**
   * Each replica leaves the set by CAS, then its data is deleted where its node answers; where it
   * does not, that node's orphan sweep deletes it later.
   */
  private async drop(
    record: VolumeRecord,
    coordinator: VolumeCoordinator,
    replicas: readonly VolumeRecord["replicas"][number][],
    message: string,
  ): Promise<void> {
    if (replicas.length === 0) return;
    const nodes = await this.cluster.nodes();
    for (const replica of replicas) {
      await coordinator.dropReplica(replica.replicaId);
      this.cluster.log.info({ volume: record.name, node: replica.node }, message);
      const node = nodes.get(replica.node);
      if (node === undefined) continue;
      await this.cluster
        .destroyReplica(node, record.id, replica.replicaId)
        .catch((error: unknown) =>
          this.cluster.log.warn(
            { err: error, volume: record.name, node: node.id },
            "a dropped replica was left behind",
          ),
        );
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
    { retryNow = false } = {},
  ): Promise<Rebuild[]> {
    const nodes = await this.cluster.nodes();
    const started: Rebuild[] = [];
    for (const replica of await this.returningReplicas(record, nodes)) {
      if (started.length >= wanted) break;
      if (coordinator.rebuild(replica.replicaId) !== undefined) continue;
      if (!retryNow && (this.resyncRetryAt.get(replica.replicaId) ?? 0) > Date.now()) continue;
      const handle = await this.cluster.handleOn(replica.node, record.id, nodes).catch((error: unknown) => {
        this.cluster.log.debug(
          { err: error, node: replica.node, volume: record.name },
          "a failed replica's node is not reachable yet",
        );
        return undefined;
      });
      if (handle === undefined) continue;
      const rebuild = coordinator.resyncReplica({
        replicaId: replica.replicaId,
        nodeId: replica.node,
        handle,
      });
      this.cluster.log.info(
        { volume: record.name, node: replica.node },
        "a failed replica is back; resyncing it",
      );
      rebuild.done.then(
        () => this.resyncRetryAt.delete(replica.replicaId),
        () => this.resyncRetryAt.set(replica.replicaId, Date.now() + RESYNC_RETRY_MS),
      );
      started.push(rebuild);
    }
    return started;
  }

  /**
   * For each exported volume: short of its replication factor, its returning replicas are resynced;
   * at it (a replacement is in sync), its failed replicas are dropped from the record and their
   * data deleted where the node answers. A volume busy with an operator's change is left for the
   * next round.
   */
  private tend(): void {
    if (this.scanning) return;
    this.scanning = true;
    void (async () => {
      for (const name of this.attachments.names()) {
        const lock = this.cluster.lock(name);
        if (lock.busy) continue;
        await lock
          .run(async () => {
            const record = await this.cluster.record(name);
            const attached = await this.attachments.here(record);
            if (attached === undefined) return;
            const missing = record.replicationFactor - liveCount(record);
            if (missing > 0) await this.startResyncOperations(record, attached.coordinator, missing);
            else await this.dropFailed(record, attached.coordinator);
          })
          .catch((error: unknown) =>
            this.cluster.log.warn({ err: error, volume: name }, "tending the replica set failed"),
          );
      }
    })().finally(() => {
      this.scanning = false;
    });
  }

  /**
   * Starts a resync operation, run by this node, for up to `wanted` failed replicas whose node is
   * up and still holds that very replica: the copy is shown, with its progress, among the
   * operations. One request token per replica and retry window, so a scan that finds the replica
   * still waiting starts nothing new, and a failed resync is tried again in the next window.
   */
  private async startResyncOperations(
    record: VolumeRecord,
    coordinator: VolumeCoordinator,
    wanted: number,
  ): Promise<void> {
    const window = Math.floor(Date.now() / RESYNC_RETRY_MS);
    const nodes = await this.cluster.nodes();
    for (const replica of (await this.returningReplicas(record, nodes)).slice(0, wanted)) {
      if (coordinator.rebuild(replica.replicaId) !== undefined) continue;
      const operation = await this.cluster.store.operations.start({
        requestToken: `resync-${replica.replicaId}-${window}`,
        kind: "resync",
        volumeId: record.id,
        volumeName: record.name,
        node: this.cluster.nodeId,
        params: { replicaId: replica.replicaId },
      });
      if (operation.state === "pending") {
        this.cluster.log.info(
          { volume: record.name, node: replica.node, operation: operation.id },
          "a failed replica is back; resync operation started",
        );
      }
    }
  }

  /** The failed replicas whose node is up and still holds that very replica (not another, not none). */
  private async returningReplicas(
    record: VolumeRecord,
    nodes: ReadonlyMap<string, NodeRecord>,
  ): Promise<VolumeRecord["replicas"]> {
    const liveness = { heartbeatTimeoutMs: this.cluster.timing.heartbeatTimeoutMs, now: new Date() };
    const returning: VolumeRecord["replicas"] = [];
    for (const replica of record.replicas) {
      const node = nodes.get(replica.node);
      if (replica.state !== "failed" || node === undefined || whyDown(node, liveness) !== undefined) continue;
      const held = await this.cluster
        .admin(node, async (admin) => admin.listReplicas(record.id))
        .catch(() => []);
      if (held[0]?.replicaId === replica.replicaId) returning.push(replica);
    }
    return returning;
  }

  close(): void {
    clearInterval(this.scan);
  }
}

/** Told of every copy (rebuild or resync) a change starts, so its caller can report progress. */
export type CopyObserver = (copy: Rebuild) => void;

export interface NewReplicaOptions {
  /** Where a new replica must go; placement still checks that the node qualifies. */
  targetNode?: string;
  observe?: CopyObserver;
}

/** Waits for the volume's running rebuilds and resyncs (their outcome is in the record). */
async function settleRebuilds(coordinator: VolumeCoordinator): Promise<void> {
  await Promise.allSettled(coordinator.runningCopies().map((rebuild) => rebuild.done));
}
