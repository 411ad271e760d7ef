import { StrataError } from "../../core/errors.js";
import type { OperationParamsOf } from "../../core/state/records.js";
import type { ClusterVolumes } from "./service.js";

export interface ScheduledSnapshotTaken {
  snapshot: string;
  /** Every volume of the group that has the snapshot now. */
  volumes: string[];
  /** `volume@snapshot` of each snapshot retention deleted. */
  deleted: string[];
}

/**
 * A policy's snapshot schedule at work on this node: the slot's snapshot of the volume and its
 * group, taken together, then the snapshots the policy no longer keeps deleted. Safe to run again
 * for one slot (a second attempt, a retried task): volumes that have the slot's snapshot already
 * are not snapshotted again, and snapshots already gone are not deleted twice.
 */
export async function takeScheduledSnapshot(
  volumes: ClusterVolumes,
  volume: string,
  params: OperationParamsOf<"scheduled-snapshot">,
): Promise<ScheduledSnapshotTaken> {
  const group = [volume, ...(params.with ?? [])];
  const missing: string[] = [];
  for (const name of group) {
    const existing = await volumes.listSnapshots(name);
    if (!existing.some((snapshot) => snapshot.name === params.snapshot)) missing.push(name);
  }
  if (missing.length > 0) await volumes.createGroupSnapshot(missing, params.snapshot);
  const deleted: string[] = [];
  for (const expired of params.expire ?? []) {
    try {
      await volumes.deleteSnapshot(expired.volume, expired.snapshot);
    } catch (error) {
      // Deleted by hand meanwhile, or by an earlier attempt: what retention wanted is done.
      if (!(error instanceof StrataError && error.code === "NOT_FOUND")) throw error;
      continue;
    }
    deleted.push(`${expired.volume}@${expired.snapshot}`);
  }
  return { snapshot: params.snapshot, volumes: group, deleted };
}
