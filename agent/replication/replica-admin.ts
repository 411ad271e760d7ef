/**
 * Replica management over the replication protocol: what a coordinator (or a volume manager) on
 * another node asks of this node's replicas — create, delete, mark rebuilding, list, and the
 * allocated runs a rebuild copies. These are control frames, rare and small, so their payloads
 * are JSON; the schemas here are shared by the server (parsing requests) and the client (parsing
 * replies), so both ends agree on one definition.
 */
import { z } from "zod";
import type { ByteRange } from "../block-device.js";

/**
 * Volume and replica ids name directories on the node's drives: letters, digits, '-' and '_' only
 * (no '.', so neither a path nor a ".deleting" name), and short. UUIDs qualify.
 */
export const REPLICA_ID_PATTERN = /^[A-Za-z0-9][A-Za-z0-9_-]{0,127}$/;

/** What LIST_REPLICAS and CREATE_REPLICA answer for each replica. */
export const ReplicaInfo = z.object({
  volumeId: z.string(),
  replicaId: z.string(),
  epoch: z.number().int().nonnegative(),
  sizeBytes: z.number().int().nonnegative(),
  allocatedBytes: z.number().int().nonnegative(),
  /** Write-only: its data is incomplete until the coordinator clears the mark. */
  rebuilding: z.boolean(),
});
export type ReplicaInfo = z.infer<typeof ReplicaInfo>;

/** The identity of a new replica. The volume id and epoch travel in the frame header. */
export interface ReplicaSpec {
  volumeId: string;
  replicaId: string;
  sizeBytes: number;
  epoch: number;
}

export const CreateReplicaPayload = z.object({
  replicaId: z.string().regex(REPLICA_ID_PATTERN),
  sizeBytes: z.number().int().positive(),
});
export const DeleteReplicaPayload = z.object({ replicaId: z.string().regex(REPLICA_ID_PATTERN) });
export const DeleteReplicaReply = z.object({ deleted: z.boolean() });
export const SetRebuildingPayload = z.object({ rebuilding: z.boolean() });
/** CHANGED_RUNS: the epoch from which changes are asked for. */
export const ChangedRunsPayload = z.object({ since: z.number().int().nonnegative() });
export const ResizeReplicaPayload = z.object({ sizeBytes: z.number().int().positive() });
/** DELETE_SNAPSHOT, REVERT_REPLICA. */
export const SnapshotPayload = z.object({ snapshotId: z.string().min(1).max(128) });
/** SNAPSHOT_RUNS: with `since`, the runs where the snapshot may differ from that older one. */
export const SnapshotRunsPayload = SnapshotPayload.extend({ since: z.string().min(1).max(128).optional() });
export const ListReplicasReply = z.object({ replicas: z.array(ReplicaInfo) });

/**
 * One page of a replica's allocated (or changed) runs, as [offset, length] pairs in order; `next` is where the
 * following page starts (the request's offset), or null after the last run.
 */
export const AllocatedRunsPage = z.object({
  runs: z.array(z.tuple([z.number().int().nonnegative(), z.number().int().positive()])),
  next: z.number().int().nonnegative().nullable(),
});
export type AllocatedRunsPage = z.infer<typeof AllocatedRunsPage>;

/**
 * Runs per ALLOCATED_RUNS reply. A pair takes at most ~36 bytes of JSON, so a page stays well
 * under 64 KiB however fragmented the volume is: a big volume never makes one huge frame.
 */
export const MAX_RUNS_PER_PAGE = 1024;

/**
 * What the replica server needs from the node to manage its replicas (agent/replica-host.ts's
 * ReplicaHost is one). Methods throw StrataError (core/errors.ts) for refusals: ALREADY_EXISTS
 * when another replica of the volume is here, INVALID_ARGUMENT for a bad id or size,
 * FAILED_PRECONDITION when the replica belongs to a local volume.
 */
export interface ReplicaAdmin {
  /** Idempotent: the same replica (same replica id) already here is answered as it is now. */
  createReplica(spec: ReplicaSpec): Promise<ReplicaInfo>;
  /** Idempotent: false when that replica is not here (any other replica of the volume stays). */
  deleteReplica(volumeId: string, replicaId: string): Promise<boolean>;
  /** Persists the rebuild mark, so a restart does not make an incomplete replica readable. */
  setRebuilding(volumeId: string, rebuilding: boolean): Promise<void>;
  /** Every replica here, or only the one of `volumeId` (none or one). */
  listReplicas(volumeId?: string): ReplicaInfo[];
}

/** The page of `runs` (in order) that starts at byte `from`; a run straddling `from` is cut there. */
export function runsPage(
  runs: Iterable<ByteRange>,
  from: number,
  limit = MAX_RUNS_PER_PAGE,
): AllocatedRunsPage {
  const page: [number, number][] = [];
  for (const run of runs) {
    const end = run.offset + run.length;
    if (end <= from) continue;
    if (page.length === limit)
      return { runs: page, next: page[page.length - 1]![0] + page[page.length - 1]![1] };
    const offset = Math.max(run.offset, from);
    page.push([offset, end - offset]);
  }
  return { runs: page, next: null };
}
