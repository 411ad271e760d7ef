import { z } from "zod";
import { Labels, Replica, ReplicationFactor, ResourceName, VolumeSize } from "../model.js";
import { PolicyAssignment, ScheduleKind, SchedulePolicy } from "../schedule-policies.js";

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
  /**
   * When this life of the node began: the agent's registration. A loss is one incident per life, so
   * the workflows name their executions by it (a node that comes back and is lost again is a new one).
   */
  registeredAt: Timestamp.optional(),
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
  replicationFactor: ReplicationFactor,
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
  /**
   * True while the attachment is a maintenance one (a change of a volume attached nowhere): after a
   * crash, its node releases it instead of exporting the volume nobody attached.
   */
  maintenance: z.boolean().optional(),
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
  maintenance: true,
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

/**
 * Whether placement may use a zone. The az-failure workflow marks a zone unavailable while AWS says
 * it is impaired (a zonal autoshift, a Health event, most of its nodes silent), so no new replica
 * lands where the next failure is likely, and available again when the zone returns.
 */
export const ZoneRecord = z.object({
  zone: z.string().min(1),
  available: z.boolean(),
  /** Why it was marked, for `cluster status` and the workflow history. */
  reason: z.string(),
  changedAt: Timestamp,
});
export type ZoneRecord = z.infer<typeof ZoneRecord>;

/**
 * The health sweep's last verdict on a node or a zone. Kept apart from the node record (which its
 * agent rewrites whenever it registers), so that a verdict changes, and its event is put, once per
 * change however many sweeps overlap.
 */
export const HealthVerdict = z.object({
  subject: z.string().min(1),
  offline: z.boolean(),
  /** Why, e.g. "no heartbeat for 12s" or "2 of 2 nodes offline". */
  reason: z.string(),
  since: Timestamp,
});
export type HealthVerdict = z.infer<typeof HealthVerdict>;

/**
 * Work that must run one at a time cluster-wide (a volume's cloudsnap catalog has one writer) is
 * done under a lease: held until `expiresAt` by `holder`, renewed while the work goes on, and free
 * for another once it expires, so a holder that died does not block the work for ever.
 */
export const LeaseRecord = z.object({
  name: z.string().min(1),
  holder: z.string().min(1),
  acquiredAt: Timestamp,
  expiresAt: Timestamp,
});
export type LeaseRecord = z.infer<typeof LeaseRecord>;

/** A named set of cloudsnap schedules (core/schedule-policies.ts says what makes one valid). */
export const SchedulePolicyRecord = SchedulePolicy;
export type SchedulePolicyRecord = SchedulePolicy;

/** The policy a volume follows: one item per volume with a policy, in their own partition. */
export const PolicyAssignmentRecord = PolicyAssignment;
export type PolicyAssignmentRecord = PolicyAssignment;

function distinct(values: readonly string[]): boolean {
  return new Set(values).size === values.length;
}

/** Volumes snapshotted together at most: their I/O is held while each is snapshotted. */
export const MAX_GROUP_VOLUMES = 16;
/** Copies one retention operation deletes at most; the rest go with the next one. */
export const MAX_EXPIRED_PER_OPERATION = 1000;
const HookCommand = z.string().min(1).max(4096);

/** Long work a node runs for a volume (DESIGN.md, Operations). */
export const OperationKind = z.enum([
  "replication",
  "rebuild",
  "resync",
  "add-replica",
  "drop-replica",
  "move-replica",
  "clone",
  "repair",
  "cloudsnap",
  "restore",
  "cloudsnap-retention",
  "scheduled-snapshot",
]);
export type OperationKind = z.infer<typeof OperationKind>;

/** pending → running → succeeded | failed | cancelled; a pending one may also be cancelled or failed. */
export const OperationState = z.enum(["pending", "running", "succeeded", "failed", "cancelled"]);
export type OperationState = z.infer<typeof OperationState>;

export const FINISHED_OPERATION_STATES: readonly OperationState[] = ["succeeded", "failed", "cancelled"];

const ReplicaToFill = z.strictObject({ replicaId: z.string().min(1) });

/**
 * What each kind needs to know beyond its volume. Strict, so a misspelt field written by a workflow
 * is refused at the start rather than ignored by the node that runs it.
 */
export const OperationParams = {
  /** `ha-update`: add or drop replicas until this many are live. */
  replication: z.strictObject({ replicationFactor: ReplicationFactor }),
  /** A failed replica copied again in full, on its own node (the one it had is replaced). */
  rebuild: ReplicaToFill,
  /** A failed replica whose node is back with its data: only what it missed is copied. */
  resync: ReplicaToFill,
  /** Without a target node, placement chooses one. */
  "add-replica": z.strictObject({ targetNode: z.string().min(1).optional() }),
  /** Without a replica, the volume service chooses which to drop (rebuilding ones first). */
  "drop-replica": z.strictObject({ replicaId: z.string().min(1).optional() }),
  /**
   * A replica moved to `targetNode`: the new one is rebuilt first, then this one is dropped, so the
   * volume never has fewer live replicas (how az-failure spreads replicas over zones again).
   */
  "move-replica": z.strictObject({ replicaId: z.string().min(1), targetNode: z.string().min(1) }),
  clone: z.strictObject({ snapshot: ResourceName, target: ResourceName }),
  /** Back to the volume's replication factor, replacing replicas whose node was lost. */
  repair: z.strictObject({}),
  /**
   * A snapshot uploaded to the cloudsnap bucket. With `with`, the group's other volumes are
   * snapshotted at the same point of their write streams and uploaded too, all tagged `group`;
   * `preHook` and `postHook` are shell commands run on the node around the snapshot; `schedule` is
   * the policy's schedule that made it (retention keeps the last N of each).
   */
  cloudsnap: z
    .strictObject({
      group: ResourceName.optional(),
      with: z.array(ResourceName).min(1).max(MAX_GROUP_VOLUMES).optional(),
      preHook: HookCommand.optional(),
      postHook: HookCommand.optional(),
      schedule: ScheduleKind.optional(),
    })
    .refine((params) => params.with === undefined || params.group !== undefined, {
      message: "a cloudsnap of several volumes needs a group name",
      path: ["group"],
    }),
  /**
   * A new volume (the operation's volume: its name is free, its id chosen at the start) made from
   * a cloudsnap: its size, with the cloudsnap's volume's replication factor unless given, placed
   * like any new volume (on nodes carrying the selector's labels, when given).
   */
  restore: z.strictObject({
    cloudsnap: z.string().min(1).max(128),
    replicationFactor: ReplicationFactor.optional(),
    labels: Labels.optional(),
    nodeSelector: Labels.optional(),
  }),
  /**
   * The volume's scheduled cloudsnaps its policy no longer keeps, deleted under the volume's
   * cloudsnap lease (one writer of its catalog); ones already gone are skipped.
   */
  "cloudsnap-retention": z.strictObject({
    cloudsnaps: z.array(z.string().min(1).max(128)).min(1).max(MAX_EXPIRED_PER_OPERATION),
  }),
  /**
   * A policy's snapshot schedule at work: the snapshot `snapshot` of the volume (with `with`, of its
   * group's other volumes too, at one point of their write streams), then the deletion of the
   * `expire`d snapshots the policy no longer keeps. A snapshot is instant (no data moves), so one
   * operation does both; taking comes first, so a failed take deletes nothing.
   */
  "scheduled-snapshot": z.strictObject({
    snapshot: ResourceName,
    schedule: ScheduleKind,
    with: z
      .array(ResourceName)
      .min(1)
      .max(MAX_GROUP_VOLUMES - 1)
      .optional(),
    expire: z
      .array(z.strictObject({ volume: ResourceName, snapshot: ResourceName }))
      .max(MAX_EXPIRED_PER_OPERATION)
      .optional(),
  }),
} satisfies Record<OperationKind, z.ZodType>;
export type OperationParamsOf<K extends OperationKind> = z.infer<(typeof OperationParams)[K]>;

/**
 * Chosen by the caller (a CLI invocation, a Step Functions execution name), so a retried request
 * finds the operation its first attempt started.
 */
export const RequestToken = z
  .string()
  .regex(/^[A-Za-z0-9_.:/-]{1,128}$/, "must be 1-128 characters: letters, digits, '_', '.', ':', '/' or '-'");

export const OperationProgress = z.object({
  bytesDone: z.number().int().nonnegative(),
  bytesTotal: z.number().int().nonnegative(),
  /** Over the interval since the previous progress write. */
  bytesPerSecond: z.number().nonnegative(),
  updatedAt: Timestamp,
});
export type OperationProgress = z.infer<typeof OperationProgress>;

export const OperationFields = z.object({
  id: z.string().min(1),
  kind: OperationKind,
  volumeId: z.string().min(1),
  /** The volume's name when the operation started, for people reading the list. */
  volumeName: ResourceName,
  /** The node that runs it. */
  node: z.string().min(1),
  state: OperationState,
  params: z.record(z.string(), z.unknown()),
  progress: OperationProgress.nullable(),
  /** What went wrong, in one sentence, once failed. */
  error: z.string().nullable(),
  /** Set by a caller; the runner aborts the work when it next looks. */
  cancelRequested: z.boolean(),
  /** What the operator should know about a finished change, e.g. replicas placed in one zone. */
  warnings: z.array(z.string()).optional(),
  /** What a succeeded operation made, e.g. the cloudsnap it uploaded. */
  result: z.record(z.string(), z.unknown()).optional(),
  requestToken: RequestToken,
  /**
   * The runner instance that claimed it. Progress and the end are written only on this value, so a
   * runner whose operation was failed for it (stalled, or its agent restarted) can no longer write.
   */
  runnerId: z.string().nullable(),
  createdAt: Timestamp,
  startedAt: Timestamp.nullable(),
  endedAt: Timestamp.nullable(),
  /** Epoch seconds after which DynamoDB's TTL may delete a finished operation. */
  expiresAt: z.number().int().optional(),
});

export const OperationRecord = OperationFields.superRefine((operation, context) => {
  const params = OperationParams[operation.kind].safeParse(operation.params);
  if (!params.success) {
    context.addIssue({ code: "custom", path: ["params"], message: z.prettifyError(params.error) });
  }
});
export type OperationRecord = z.infer<typeof OperationRecord>;

/** A request token, taken once: what it started, so a second start with it finds the same operation. */
export const OperationTokenRecord = z.object({
  requestToken: RequestToken,
  operationId: z.string().min(1),
  kind: OperationKind,
  volumeId: z.string().min(1),
  node: z.string().min(1),
  createdAt: Timestamp,
  expiresAt: z.number().int(),
});
export type OperationTokenRecord = z.infer<typeof OperationTokenRecord>;

/** An unfinished operation in its node's queue; the record itself stays in the operations collection. */
export const QueuedOperation = z.object({ operationId: z.string().min(1), createdAt: Timestamp });
export type QueuedOperation = z.infer<typeof QueuedOperation>;
