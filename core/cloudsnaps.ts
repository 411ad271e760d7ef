import { z } from "zod";
import { Labels, ReplicationFactor, ResourceName } from "./model.js";
import { ScheduleKind } from "./schedule-policies.js";

/**
 * One cloudsnap as its volume's catalog in the bucket records it (and as the API and the CLI show
 * it): where it came from and what it cost. The manifest, in the bucket, says where its chunks are.
 */
export const Cloudsnap = z.strictObject({
  /** `<volume id>-<UTC time>`: finds the volume's catalog, in any cluster sharing the bucket. */
  id: z.string(),
  createdAt: z.iso.datetime(),
  /** The volume's name when it was taken (names can be reused; the id cannot). */
  volumeName: z.string(),
  sizeBytes: z.number().int().positive(),
  /** The volume's replication factor then: what a restore gives the new volume unless told otherwise. */
  replicationFactor: z.number().int().positive(),
  /** The snapshot it was read from, which stays on the cluster as the next incremental's base. */
  snapshotId: z.string(),
  /** Bytes of the volume that are not zeros (chunks the manifest names × their size). */
  dataBytes: z.number().int().nonnegative(),
  /** Bytes read from the volume for this cloudsnap: the changed chunks for an incremental. */
  scannedBytes: z.number().int().nonnegative(),
  /** Sealed bytes this cloudsnap put into new packs (what dedupe and incrementals save shows here). */
  uploadedBytes: z.number().int().nonnegative(),
  chunks: z.number().int().nonnegative(),
  newChunks: z.number().int().nonnegative(),
  /** Whether it read only the blocks changed since the previous cloudsnap's snapshot. */
  incremental: z.boolean(),
  /** Set when it was taken with other volumes at one point of their write streams. */
  group: z.string().optional(),
  /** The schedule of its volume's policy that made it; absent for one taken by hand. */
  schedule: ScheduleKind.optional(),
});
export type Cloudsnap = z.infer<typeof Cloudsnap>;

/**
 * The cloudsnaps in the cluster's bucket. Taking and restoring are operations (long work, started
 * then polled: kinds "cloudsnap" and "restore"); these answer at once.
 */
export interface CloudsnapService {
  /** Oldest first. `volume` is a volume of this cluster by name, or any volume in the bucket by id. */
  listCloudsnaps(volume: string): Promise<Cloudsnap[]>;
  getCloudsnap(id: string): Promise<Cloudsnap>;
  /** Unlists it, deletes its manifest and the packs no other cloudsnap of the volume needs. */
  deleteCloudsnap(id: string): Promise<Cloudsnap>;
}

/**
 * The restore workflow's input, as an operator gives it to StartExecution (README, "Restore
 * workflow"). Strict: a misspelt field is refused rather than silently ignored.
 */
export const RestoreRequest = z.strictObject({
  cloudsnap: z.string().min(1).max(128),
  /** The new volume's name: it must be free. */
  volume: ResourceName,
  replicationFactor: ReplicationFactor.optional(),
  labels: Labels.optional(),
  /** Its replicas go only to nodes carrying these labels, as with `volume create --selector`. */
  nodeSelector: Labels.optional(),
});
export type RestoreRequest = z.infer<typeof RestoreRequest>;
