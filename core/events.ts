import { z } from "zod";

/**
 * Strata's own events on the EventBridge bus: what the health sweep sees and what the workflows
 * did. Their detail types are what rules match (infra/event-rules.ts) and what `strata events`
 * shows, so operators can subscribe to recoveries the way they subscribe to AWS's own events.
 */
export const STRATA_EVENT_SOURCE = "strata";

export const StrataDetailType = {
  nodeOffline: "Strata Node Offline",
  nodeOnline: "Strata Node Online",
  zoneOffline: "Strata Zone Offline",
  zoneOnline: "Strata Zone Online",
  redundancyRestored: "Strata Volume Redundancy Restored",
  recoveryFinished: "Strata Recovery Finished",
  cloudsnapCompleted: "Strata Cloudsnap Completed",
  cloudsnapFailed: "Strata Cloudsnap Failed",
  snapshotCompleted: "Strata Snapshot Completed",
  snapshotFailed: "Strata Snapshot Failed",
  restoreCompleted: "Strata Restore Completed",
  restoreFailed: "Strata Restore Failed",
} as const;
export type StrataDetailType = (typeof StrataDetailType)[keyof typeof StrataDetailType];

const Timestamp = z.iso.datetime();

export const NodeHealthDetail = z.object({
  clusterName: z.string().min(1),
  nodeId: z.string().min(1),
  zone: z.string().min(1),
  instanceId: z.string().optional(),
  /** The node's registration (NodeRecord.registeredAt): one loss per life of the node. */
  registeredAt: Timestamp.optional(),
  /**
   * Its agent marked it down on the way out (a restart, a drain) rather than going silent: likely
   * back in moments, so node-loss gives it a grace before fencing.
   */
  stoppedCleanly: z.boolean().optional(),
  reason: z.string(),
  observedAt: Timestamp,
});
export type NodeHealthDetail = z.infer<typeof NodeHealthDetail>;

export const ZoneHealthDetail = z.object({
  clusterName: z.string().min(1),
  zone: z.string().min(1),
  offlineNodes: z.number().int().nonnegative(),
  totalNodes: z.number().int().nonnegative(),
  /**
   * On Zone Offline: every offline node of the zone was stopped cleanly by its agent (a rolling
   * restart, a drain), so az-failure gives the zone node-loss's grace before it marks it unavailable.
   */
  stoppedCleanly: z.boolean().optional(),
  reason: z.string(),
  observedAt: Timestamp,
});
export type ZoneHealthDetail = z.infer<typeof ZoneHealthDetail>;

/**
 * How a recovery kept or restored a volume's redundancy: new replicas copied in full, the lost
 * node's replicas resynced after its drives moved, a replica moved into a returned zone, or moved
 * off a node being scaled in before it went.
 */
export const RecoveryHow = z.enum(["re-replicated", "resynced", "re-spread", "drained"]);
export type RecoveryHow = z.infer<typeof RecoveryHow>;

/** One volume back at its replication factor after a recovery. */
export const RedundancyRestoredDetail = z.object({
  clusterName: z.string().min(1),
  volume: z.string().min(1),
  /** The workflow execution that restored it. */
  execution: z.string().min(1),
  how: RecoveryHow,
  bytesCopied: z.number().int().nonnegative(),
});
export type RedundancyRestoredDetail = z.infer<typeof RedundancyRestoredDetail>;

/** What one workflow run achieved, volume by volume, including what it could not do and why. */
export const RecoveryFinishedDetail = z.object({
  clusterName: z.string().min(1),
  workflow: z.enum(["node-loss", "az-failure"]),
  execution: z.string().min(1),
  /** The node or zone recovered from. */
  subject: z.string().min(1),
  restored: z.array(z.string()),
  failed: z.array(z.object({ volume: z.string(), reason: z.string() })),
  /** Why the workflow itself stopped short, when it did (its Catch path). */
  error: z.string().optional(),
});
export type RecoveryFinishedDetail = z.infer<typeof RecoveryFinishedDetail>;

/** A scheduled cloudsnap uploaded, and what its policy's retention then deleted of the volume's. */
export const CloudsnapCompletedDetail = z.object({
  clusterName: z.string().min(1),
  execution: z.string().min(1),
  volume: z.string(),
  cloudsnap: z.string(),
  /** Every cloudsnap made: a group's, one per volume, taken at one point of their write streams. */
  cloudsnaps: z.array(z.string()),
  schedule: z.string().optional(),
  /** The cloudsnaps retention deleted (none when it kept them all). */
  expired: z.array(z.string()),
  /** Why retention did not run to the end, when it did not: the cloudsnap itself is safe. */
  retentionError: z.string().optional(),
});
export type CloudsnapCompletedDetail = z.infer<typeof CloudsnapCompletedDetail>;

/** A scheduled cloudsnap that failed twice (a second attempt is made with a new operation). */
export const CloudsnapFailedDetail = z.object({
  clusterName: z.string().min(1),
  execution: z.string().min(1),
  volume: z.string(),
  schedule: z.string().optional(),
  reason: z.string(),
});
export type CloudsnapFailedDetail = z.infer<typeof CloudsnapFailedDetail>;

/** A policy's snapshot schedule took `snapshot` of `volumes` (a group, together), then deleted `expired`. */
export const SnapshotCompletedDetail = z.object({
  clusterName: z.string().min(1),
  execution: z.string().min(1),
  volume: z.string(),
  volumes: z.array(z.string()),
  snapshot: z.string(),
  schedule: z.string().optional(),
  /** `volume@snapshot` of each snapshot retention deleted. */
  expired: z.array(z.string()),
});
export type SnapshotCompletedDetail = z.infer<typeof SnapshotCompletedDetail>;

/** A scheduled snapshot that failed twice; nothing was deleted (retention runs after the snapshot). */
export const SnapshotFailedDetail = CloudsnapFailedDetail;
export type SnapshotFailedDetail = CloudsnapFailedDetail;

/** The restore workflow made `volume` from `cloudsnap`. */
export const RestoreCompletedDetail = z.object({
  clusterName: z.string().min(1),
  execution: z.string().min(1),
  volume: z.string(),
  cloudsnap: z.string(),
});
export type RestoreCompletedDetail = z.infer<typeof RestoreCompletedDetail>;

/** The restore workflow could not make the volume; nothing half-made is left (the restore's guarantee). */
export const RestoreFailedDetail = RestoreCompletedDetail.extend({ reason: z.string() });
export type RestoreFailedDetail = z.infer<typeof RestoreFailedDetail>;

/** An event as PutEvents takes it (the bus adds id, time, account and region). */
export interface StrataEventEntry {
  Source: typeof STRATA_EVENT_SOURCE;
  DetailType: StrataDetailType;
  Detail: string;
  Resources?: string[];
}

export function strataEvent(detailType: StrataDetailType, detail: object): StrataEventEntry {
  return { Source: STRATA_EVENT_SOURCE, DetailType: detailType, Detail: JSON.stringify(detail) };
}
