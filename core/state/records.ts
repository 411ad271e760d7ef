import { z } from "zod";
import { Labels, Replica, ResourceName, VolumeSize } from "../model.js";

/**
 * The records of the cluster-state table, as the store hands them out. Every item read back is parsed
 * with these schemas, so a record written by an older or broken writer fails loudly at the reader
 * instead of spreading through placement and the data path.
 */

const Timestamp = z.iso.datetime();

export const NodeAddresses = z.object({
  /** The agent's control API, e.g. http://10.0.1.5:9500. */
  api: z.string(),
  /** Where replica servers accept the replication protocol (host:port). */
  replication: z.string(),
  /** Where NBD clients connect (host:port). */
  nbd: z.string(),
});
export type NodeAddresses = z.infer<typeof NodeAddresses>;

/** The fields past free space are absent from records written by agents that did not report them. */
export const NodePool = z.object({
  capacityBytes: z.number().int().nonnegative(),
  freeBytes: z.number().int().nonnegative(),
  /** The sum of the sizes of the node's replicas: what thin provisioning has promised. */
  provisionedBytes: z.number().int().nonnegative().optional(),
  /** Files on the pool's filesystem must be smaller than this (ext4, 4 KiB blocks: 16 TiB). */
  fileSizeLimitBytes: z.number().int().positive().optional(),
  /** Names the filesystem holding the pool's drives: nodes with the same id share their space. */
  filesystemId: z.string().optional(),
});
export type NodePool = z.infer<typeof NodePool>;

export const NodeState = z.enum(["up", "down"]);
export type NodeState = z.infer<typeof NodeState>;

export const NodeRecord = z.object({
  id: z.string().min(1),
  zone: z.string().min(1),
  /** The EC2 instance in AWS; absent locally. Lets node-loss match EC2 events to nodes. */
  instanceId: z.string().optional(),
  addresses: NodeAddresses,
  pool: NodePool,
  /** Matched by volumes' node selectors. */
  labels: Labels,
  state: NodeState,
  lastHeartbeat: Timestamp,
});
export type NodeRecord = z.infer<typeof NodeRecord>;

/**
 * A volume. `epoch` and `replicas`/`attachedNode` only change together through a compare-and-swap
 * on the epoch (DESIGN.md invariants 2, 4, 5).
 */
export const VolumeRecord = z.object({
  id: z.string().min(1),
  name: ResourceName,
  sizeBytes: VolumeSize,
  replicationFactor: z.number().int().min(1).max(3),
  labels: Labels,
  /** Replicas may only be placed on nodes carrying every one of these labels. */
  nodeSelector: Labels,
  epoch: z.number().int().positive(),
  replicas: z
    .array(Replica)
    // Invariant 1 (distinct nodes) is enforced at the store boundary, so no writer can break it.
    .refine(
      (replicas) => distinct(replicas.map((replica) => replica.node)),
      "replicas must be on distinct nodes",
    )
    .refine(
      (replicas) => distinct(replicas.map((replica) => replica.replicaId)),
      "replica ids must be unique",
    ),
  attachedNode: z.string().nullable(),
  createdAt: Timestamp,
  updatedAt: Timestamp,
});
export type VolumeRecord = z.infer<typeof VolumeRecord>;

/**
 * What a compare-and-swap may change: the replica set and how many replicas it should have, the
 * attachment, and the size (every replica must agree on it, so a resize fences writes at the old
 * epoch too). Labels are left out on purpose:
 * they do not concern the data path, and bumping the epoch for them would fence in-flight writes.
 * An empty change only bumps the epoch, which is how a fence is recorded.
 */
export const VolumeChange = VolumeRecord.pick({
  replicas: true,
  replicationFactor: true,
  attachedNode: true,
  sizeBytes: true,
}).partial();
export type VolumeChange = z.infer<typeof VolumeChange>;

/** Reserves a volume name: its own item, so two creates of one name race on one conditional put. */
export const VolumeNameRecord = z.object({
  name: ResourceName,
  volumeId: z.string().min(1),
  createdAt: Timestamp,
});
export type VolumeNameRecord = z.infer<typeof VolumeNameRecord>;

export const SnapshotRecord = z.object({
  volumeId: z.string().min(1),
  /** Unique within its volume: "volume@snapshot" names it for operators. */
  name: ResourceName,
  id: z.string().min(1),
  /** The volume's size when the snapshot was taken: what a clone or restore of it needs. */
  sizeBytes: VolumeSize,
  createdAt: Timestamp,
});
export type SnapshotRecord = z.infer<typeof SnapshotRecord>;

function distinct(values: readonly string[]): boolean {
  return new Set(values).size === values.length;
}
