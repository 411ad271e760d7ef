import type { Attachment, Labels, NodeStatus, Snapshot, Volume } from "./model.js";

export interface CreateVolume {
  name: string;
  sizeBytes: number;
  labels: Labels;
  replicationFactor: number;
  nodeSelector: Labels;
}

/**
 * The operations of the control API. Implementations throw StrataError (core/errors.ts) for every
 * refused request, so the API can answer with the right status and message.
 */
export interface VolumeService {
  nodeStatus(): Promise<NodeStatus>;
  listVolumes(): Promise<Volume[]>;
  getVolume(name: string): Promise<Volume>;
  createVolume(request: CreateVolume): Promise<Volume>;
  /** Grow only; shrinking is refused. */
  resizeVolume(name: string, sizeBytes: number): Promise<Volume>;
  /** Refused while the volume is attached. */
  deleteVolume(name: string): Promise<void>;
  /** Adds replicas (rebuilt online) to reach `replicationFactor`; the volume is attached to the node asked. */
  updateReplication(name: string, replicationFactor: number): Promise<Volume>;
  attachVolume(name: string): Promise<Attachment>;
  /** Refused while NBD clients are still connected. */
  detachVolume(name: string): Promise<void>;
  listSnapshots(volume: string): Promise<Snapshot[]>;
  createSnapshot(volume: string, name?: string): Promise<Snapshot>;
  deleteSnapshot(volume: string, snapshot: string): Promise<void>;
  cloneSnapshot(volume: string, snapshot: string, target: string, labels: Labels): Promise<Volume>;
  /** Refused while the volume is attached. */
  revertVolume(volume: string, snapshot: string): Promise<Volume>;
}
