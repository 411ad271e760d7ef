import { z } from "zod";

/**
 * The domain shared by the agent, the CLI and (later) the workflows. The control API's requests and
 * responses are these schemas, so both ends validate the same shapes.
 */

/** Volume and snapshot names are NBD export names and path-safe; '@' is left out so "vol@snap" parses. */
export const ResourceName = z
  .string()
  .regex(
    /^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,62}$/,
    "must be 1-63 characters: letters, digits, '-', '_' or '.', starting with a letter or digit",
  );

export const Labels = z.record(
  z.string().regex(/^[a-zA-Z0-9][a-zA-Z0-9_./-]{0,62}$/, "label keys are 1-63 of [a-zA-Z0-9_./-]"),
  z.string().max(63, "label values are at most 63 characters"),
);
export type Labels = z.infer<typeof Labels>;

/**
 * Every volume is a whole number of 4 KiB blocks; 64 TiB keeps block numbers well inside 2^53.
 * A node's filesystem may allow less (ext4 with 4 KiB blocks: files smaller than 16 TiB), which
 * its pool reports and placement checks.
 */
export const VOLUME_BLOCK_SIZE = 4096;
export const MAX_VOLUME_SIZE = 64 * 1024 ** 4;

export const VolumeSize = z
  .number()
  .int("size must be a whole number of bytes")
  .positive("size must be greater than 0")
  .max(MAX_VOLUME_SIZE, "size must be at most 64 TiB")
  .refine((n) => n % VOLUME_BLOCK_SIZE === 0, "size must be a multiple of 4 KiB");

export const ReplicaState = z.enum(["in-sync", "rebuilding", "failed"]);

export const Replica = z.object({
  replicaId: z.string(),
  node: z.string(),
  state: ReplicaState,
});
export type Replica = z.infer<typeof Replica>;

/** A replica as the control API shows it: where it is, and how far its rebuild has come. */
export const ReplicaView = Replica.extend({
  zone: z.string().optional(),
  rebuild: z
    .object({
      /** rebuild: a new replica gets the allocated data; resync: a returning one gets what changed. */
      kind: z.enum(["rebuild", "resync"]),
      copiedBytes: z.number(),
      totalBytes: z.number(),
    })
    .optional(),
});
export type ReplicaView = z.infer<typeof ReplicaView>;

export const Volume = z.object({
  id: z.string(),
  name: ResourceName,
  sizeBytes: z.number(),
  labels: Labels,
  createdAt: z.string(),
  /** Bumped by every change of the replica set or attachment (DESIGN.md invariants 2, 4, 5). */
  epoch: z.number().int(),
  attachedNode: z.string().nullable(),
  /** How to reach the volume over NBD, when attached. */
  nbdUri: z.string().nullable(),
  allocatedBytes: z.number(),
  snapshotCount: z.number().int(),
  replicas: z.array(ReplicaView),
  /** What the operator should know about a placement just made, e.g. replicas sharing a zone. */
  warnings: z.array(z.string()).optional(),
});
export type Volume = z.infer<typeof Volume>;

export const Snapshot = z.object({
  id: z.string(),
  name: ResourceName,
  volume: ResourceName,
  createdAt: z.string(),
  /** Space held only by this snapshot: what deleting it could give back. */
  exclusiveBytes: z.number(),
});
export type Snapshot = z.infer<typeof Snapshot>;

export const DriveUsage = z.object({
  path: z.string(),
  capacityBytes: z.number(),
  usedBytes: z.number(),
});

export const PoolUsage = z.object({
  capacityBytes: z.number(),
  usedBytes: z.number(),
  freeBytes: z.number(),
  provisionedBytes: z.number(),
  /** A volume must be smaller than this: the largest file the drives' filesystems allow (absent: no limit below the maximum volume size). */
  fileSizeLimitBytes: z.number().optional(),
  /** The filesystem(s) holding the drives; pools with the same id share one filesystem's space. */
  filesystemId: z.string(),
  drives: z.array(DriveUsage),
});
export type PoolUsage = z.infer<typeof PoolUsage>;

export const NodeStatus = z.object({
  id: z.string(),
  zone: z.string(),
  state: z.enum(["up", "down"]),
  version: z.string(),
  apiUrl: z.string(),
  nbdAddress: z.string(),
  nbdSocket: z.string().nullable(),
  pool: PoolUsage,
  volumeCount: z.number().int(),
  startedAt: z.string(),
});
export type NodeStatus = z.infer<typeof NodeStatus>;

/** Up to three replicas, one per availability zone in a typical AWS region. */
/** One replica per zone of a three-zone region: more would share zones and buy no survival. */
export const MAX_REPLICATION_FACTOR = 3;
export const ReplicationFactor = z
  .number()
  .int()
  .min(1)
  .max(MAX_REPLICATION_FACTOR, "replication factor must be 1, 2 or 3");

export const CreateVolumeRequest = z.strictObject({
  name: ResourceName,
  sizeBytes: VolumeSize,
  labels: Labels.default({}),
  replicationFactor: ReplicationFactor.default(1),
  /** Replicas go only to nodes carrying every one of these labels. */
  nodeSelector: Labels.default({}),
});
export type CreateVolumeRequest = z.input<typeof CreateVolumeRequest>;

export const ResizeVolumeRequest = z.strictObject({ sizeBytes: VolumeSize });
export const UpdateReplicationRequest = z.strictObject({ replicationFactor: ReplicationFactor });
export const CreateSnapshotRequest = z.strictObject({ name: ResourceName.optional() });
export const CloneSnapshotRequest = z.strictObject({ target: ResourceName, labels: Labels.default({}) });
export const RevertVolumeRequest = z.strictObject({ snapshot: ResourceName });

export const Attachment = z.object({
  volume: ResourceName,
  node: z.string(),
  nbdUri: z.string(),
  /** The same export over the agent's Unix socket, when it has one (lower latency on the node). */
  nbdUnixUri: z.string().nullable(),
});
export type Attachment = z.infer<typeof Attachment>;
