import { conflict } from "../../core/errors.js";
import { EpochConflictError } from "../../core/state/errors.js";
import type { VolumeRecord } from "../../core/state/records.js";
import { formatSize } from "../../core/units.js";
import { countedLease, type ExportLease, type ExportRegistry } from "../exports.js";
import { type CoordinatorState, VolumeCoordinator } from "../replication/coordinator/coordinator.js";
import { StoreMembership } from "../replication/coordinator/store-membership.js";
import type { ReplicaHandle } from "../replication/replica-handle.js";
import type { ClusterContext } from "./cluster-context.js";

/** Coordinators that can still change their replica set (not fenced, failed or closed). */
const LIVE_STATES: ReadonlySet<CoordinatorState> = new Set(["serving", "holding", "changing-membership"]);

export interface AttachedVolume {
  coordinator: VolumeCoordinator;
  /** Open NBD connections. */
  leases: number;
  /**
   * False for a maintenance attachment: taken to change a volume attached nowhere (snapshot,
   * resize, repair), never exported, released when the change is done.
   */
  exported: boolean;
}

/**
 * The volumes attached to this node, each with its coordinator, and the NBD server's registry of
 * exports. An attachment is an epoch CAS in the store that fences any coordinator elsewhere
 * (invariant 5); a coordinator fenced in turn is dropped here with its export. Callers hold the
 * volume's lock (ClusterContext.lock) around every call that changes an attachment.
 */
export class AttachmentRegistry implements ExportRegistry {
  private readonly attached = new Map<string, AttachedVolume>();

  constructor(private readonly cluster: ClusterContext) {}

  /** The coordinator of `name` here, if any, whatever its state: for progress shown in views. */
  coordinatorOf(name: string): VolumeCoordinator | undefined {
    return this.attached.get(name)?.coordinator;
  }

  /**
   * The live coordinator of the volume here. One whose volume another node took over (the record
   * names that node; this one learns it was fenced only at its next write) is dropped: its export
   * goes, and a later attach here takes the volume back.
   */
  async here(record: VolumeRecord): Promise<AttachedVolume | undefined> {
    const attached = this.attached.get(record.name);
    if (attached === undefined) return undefined;
    if (isLive(attached) && record.attachedNode === this.cluster.nodeId) return attached;
    await this.drop(record.name, attached, "taken over by another node");
    return undefined;
  }

  /**
   * Attaches the volume here: a coordinator over its replicas takes the volume's epoch with a CAS.
   * Still recorded as attached (its coordinator died or is being fenced, not detached), the new
   * coordinator reconciles the replicas first.
   */
  async attach(record: VolumeRecord, exported: boolean): Promise<AttachedVolume> {
    const coordinator = await this.coordinatorFor(record, exported);
    try {
      await coordinator.attach({ reconcile: record.attachedNode !== null });
    } catch (error) {
      await coordinator.close();
      if (error instanceof EpochConflictError) {
        throw conflict(`volume "${record.name}" changed while attaching; try again`);
      }
      throw error;
    }
    const attached: AttachedVolume = { coordinator, leases: 0, exported };
    this.attached.set(record.name, attached);
    // A fenced coordinator can never write again: its export goes at once, not at the next command.
    coordinator.on("state", (_from, to) => {
      if (to !== "fenced") return;
      void this.cluster
        .lock(record.name)
        .run(() => this.drop(record.name, attached, "fenced"))
        .catch((error: unknown) =>
          this.cluster.log.warn({ err: error, volume: record.name }, "dropping a fenced attachment failed"),
        );
    });
    this.cluster.log.info(
      { volume: record.name, epoch: coordinator.epoch, exported },
      exported ? "volume attached" : "volume attached for maintenance",
    );
    return attached;
  }

  /**
   * Runs `work` on the volume's coordinator on this node. An exported one is used as it is, without
   * reading the record: should another node have taken the volume over, the replicas refuse this
   * coordinator's epoch and it is fenced (invariant 2), so nothing is changed behind the new owner's
   * back. A volume attached nowhere gets a maintenance attachment for the work: taken like any
   * attach (an epoch CAS that fences whatever coordinator is left elsewhere), never exported,
   * released when the work is done. So snapshots, resizes and repairs work on every volume, attached
   * or not. A volume attached to another node is changed there.
   */
  async withCoordinator<T>(
    name: string,
    doWhat: string,
    work: (attached: AttachedVolume) => Promise<T>,
  ): Promise<T> {
    const exported = this.attached.get(name);
    const attached =
      exported !== undefined && exportable(exported) ? exported : await this.forChange(name, doWhat);
    try {
      return await work(attached);
    } catch (error) {
      if (attached.coordinator.state === "fenced") {
        throw conflict(`volume "${name}" was taken over by another node while this one tried to ${doWhat}`);
      }
      throw error;
    } finally {
      if (!attached.exported) await this.release(name, attached);
    }
  }

  /** The attachment to change the volume through, as its record says: here, a maintenance one, or none. */
  private async forChange(name: string, doWhat: string): Promise<AttachedVolume> {
    const record = await this.cluster.record(name);
    const attached = await this.here(record);
    if (attached !== undefined) return attached;
    if (record.attachedNode !== null && record.attachedNode !== this.cluster.nodeId) {
      throw conflict(
        `volume "${name}" is attached to ${record.attachedNode}: ${doWhat} there (--node ${record.attachedNode})`,
      );
    }
    // Recorded as attached here with no coordinator (its re-attach after a restart failed, or a
    // maintenance attachment a crash cut short): it is attached again, for what it was.
    return this.attach(record, record.attachedNode === this.cluster.nodeId && record.maintenance !== true);
  }

  /** Flushes and closes the coordinator, then records the volume as attached nowhere. */
  async release(name: string, attached: AttachedVolume): Promise<void> {
    if (!isLive(attached)) {
      await this.drop(name, attached, attached.coordinator.state);
      return;
    }
    await attached.coordinator.flush();
    const volumeId = attached.coordinator.volumeId;
    const epoch = attached.coordinator.epoch;
    await attached.coordinator.close();
    this.attached.delete(name);
    await this.cluster.store.volumes.updateIfEpoch(volumeId, epoch, {
      attachedNode: null,
      maintenance: false,
    });
    this.cluster.log.info({ volume: name, exported: attached.exported }, "volume detached");
  }

  private async drop(name: string, attached: AttachedVolume, why: string): Promise<void> {
    if (this.attached.get(name) !== attached) return;
    this.attached.delete(name);
    await attached.coordinator.close();
    this.cluster.log.warn({ volume: name, reason: why }, "attachment dropped");
  }

  private async coordinatorFor(record: VolumeRecord, exported: boolean): Promise<VolumeCoordinator> {
    const nodes = await this.cluster.nodes();
    const replicas = [];
    for (const replica of record.replicas) {
      if (replica.state === "failed") continue;
      let handle: ReplicaHandle;
      try {
        handle = await this.cluster.handleOn(replica.node, record.id, nodes);
      } catch (error) {
        // Unreachable now: attach() removes it from the set with the epoch bump.
        this.cluster.log.warn(
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
      membership: new StoreMembership(
        this.cluster.store.volumes,
        record.id,
        this.cluster.nodeId,
        exported ? "export" : "maintenance",
      ),
      log: this.cluster.log,
      checkpointIntervalMs: this.cluster.timing.checkpointIntervalMs,
    });
  }

  /** The exported, live attachments: what NBD clients may open, and what the reconciler tends. */
  names(): string[] {
    return [...this.attached].flatMap(([name, attached]) => (exportable(attached) ? [name] : []));
  }

  open(name: string): ExportLease | undefined {
    const attached = this.attached.get(name);
    if (attached === undefined || !exportable(attached)) return undefined;
    const replicas = attached.coordinator.replicas().length;
    const description = `Strata volume ${name} (${formatSize(attached.coordinator.sizeBytes)}, ${replicas} ${replicas === 1 ? "replica" : "replicas"})`;
    return countedLease(name, description, attached.coordinator, attached);
  }

  async close(): Promise<void> {
    for (const attached of this.attached.values()) await attached.coordinator.close();
    this.attached.clear();
  }
}

function isLive(attached: AttachedVolume): boolean {
  return LIVE_STATES.has(attached.coordinator.state);
}

function exportable(attached: AttachedVolume): boolean {
  return attached.exported && isLive(attached);
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
