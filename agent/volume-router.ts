import { StrataError } from "../core/errors.js";
import type { Attachment, Labels, NodeStatus, Snapshot, Volume } from "../core/model.js";
import type { CreateVolume, VolumeService } from "../core/volume-service.js";
import type { ClusterVolumes } from "./cluster-volumes.js";
import type { ExportLease, ExportRegistry } from "./exports.js";
import type { Endpoints, VolumeManager } from "./volumes.js";

/**
 * A cluster node's volumes: replicated ones (--repl 2 or 3) are the cluster's, with their records in
 * the state store; single-replica ones stay on the node that holds them, with every snapshot
 * operation (delete, clone, revert) and resize, which replicated volumes do not have yet. Each
 * request goes to the side that holds the volume; a name is taken on one side only.
 */
export class VolumeRouter implements VolumeService, ExportRegistry {
  constructor(
    private readonly local: VolumeManager,
    private readonly cluster: ClusterVolumes,
  ) {}

  set endpoints(endpoints: Endpoints) {
    this.local.endpoints = endpoints;
    this.cluster.endpoints = endpoints;
  }

  get endpoints(): Endpoints {
    return this.local.endpoints;
  }

  /**
   * Whether the cluster holds the name. A single-replica volume lives on this node alone, so it can
   * still be made while the store is unreachable; only the cross-side name check is skipped then.
   */
  private clusterHas(name: string): Promise<boolean> {
    return this.cluster.exists(name).catch(() => false);
  }

  private side(name: string): VolumeService {
    return this.local.has(name) ? this.local : this.cluster;
  }

  nodeStatus(): Promise<NodeStatus> {
    return this.cluster.nodeStatus();
  }

  async listVolumes(): Promise<Volume[]> {
    const [local, cluster] = await Promise.all([this.local.listVolumes(), this.cluster.listVolumes()]);
    return [...local, ...cluster].sort((a, b) => a.name.localeCompare(b.name));
  }

  getVolume(name: string): Promise<Volume> {
    return this.side(name).getVolume(name);
  }

  async createVolume(request: CreateVolume): Promise<Volume> {
    if (request.replicationFactor > 1) {
      if (this.local.has(request.name)) throw alreadyExists(request.name);
      return this.cluster.createVolume(request);
    }
    if (await this.clusterHas(request.name)) throw alreadyExists(request.name);
    return this.local.createVolume(request);
  }

  resizeVolume(name: string, sizeBytes: number): Promise<Volume> {
    return this.side(name).resizeVolume(name, sizeBytes);
  }

  deleteVolume(name: string): Promise<void> {
    return this.side(name).deleteVolume(name);
  }

  updateReplication(name: string, replicationFactor: number): Promise<Volume> {
    return this.side(name).updateReplication(name, replicationFactor);
  }

  attachVolume(name: string): Promise<Attachment> {
    return this.side(name).attachVolume(name);
  }

  detachVolume(name: string): Promise<void> {
    return this.side(name).detachVolume(name);
  }

  listSnapshots(volume: string): Promise<Snapshot[]> {
    return this.side(volume).listSnapshots(volume);
  }

  createSnapshot(volume: string, name?: string): Promise<Snapshot> {
    return this.side(volume).createSnapshot(volume, name);
  }

  deleteSnapshot(volume: string, snapshot: string): Promise<void> {
    return this.side(volume).deleteSnapshot(volume, snapshot);
  }

  async cloneSnapshot(volume: string, snapshot: string, target: string, labels: Labels): Promise<Volume> {
    if (await this.clusterHas(target)) throw alreadyExists(target);
    return this.side(volume).cloneSnapshot(volume, snapshot, target, labels);
  }

  revertVolume(volume: string, snapshot: string): Promise<Volume> {
    return this.side(volume).revertVolume(volume, snapshot);
  }

  names(): string[] {
    return [...this.local.names(), ...this.cluster.names()];
  }

  open(name: string): ExportLease | undefined {
    return this.local.open(name) ?? this.cluster.open(name);
  }

  async close(): Promise<void> {
    await this.local.close();
    await this.cluster.close();
  }
}

function alreadyExists(name: string): StrataError {
  return new StrataError("ALREADY_EXISTS", `volume "${name}" already exists`);
}
