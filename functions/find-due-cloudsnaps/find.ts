import { z } from "zod";
import type { ScheduleKind } from "../../core/schedule-policies.js";
import { FINISHED_OPERATION_STATES } from "../../core/state/records.js";
import type { CloudsnapCatalogs } from "../shared/cloudsnap-catalogs.js";
import type { ClusterAccess } from "../shared/cluster.js";
import { liveNodeFor } from "../shared/nodes.js";
import { requestToken } from "../shared/request-tokens.js";
import { dueSchedule } from "./schedule.js";

export const FindDueInput = z.object({
  /**
   * The execution's start ($$.Execution.StartTime): the clock the schedules are judged by, so a
   * retried task finds the same volumes due in the same slots.
   */
  at: z.iso.datetime({ offset: true }),
});
export type FindDueInput = z.infer<typeof FindDueInput>;

/** A cloudsnap operation as start-operation takes it. */
interface CloudsnapStart {
  kind: "cloudsnap";
  volume: string;
  node: string;
  requestToken: string;
  params: { schedule: ScheduleKind; group?: string };
}

/** One item of the workflow's Map: a volume to upload, and how to try once more if it fails. */
export interface DueCloudsnap {
  volume: string;
  volumeId: string;
  policy: string;
  schedule: ScheduleKind;
  slot: string;
  operation: CloudsnapStart;
  /** The same upload under a new token: a failed operation stays failed under its own. */
  secondAttempt: CloudsnapStart;
}

export interface DueCloudsnaps {
  due: DueCloudsnap[];
  /** Volumes with a policy that were not started, and why (no live node, an upload still running). */
  skipped: { volume: string; reason: string }[];
}

/** The kinds that change a volume's catalog: while one runs, the volume waits for the next run. */
const CATALOG_WRITERS = new Set(["cloudsnap", "cloudsnap-retention"]);

/**
 * The volumes whose policy has a schedule due (see dueSchedule), read from the policies, the
 * assignments (one Query: volumes without a policy are never read) and each assigned volume's
 * catalog. Each is started on the node it is attached to, which reads it through its coordinator,
 * else on a live node holding one of its replicas.
 */
export async function findDueCloudsnaps(
  input: FindDueInput,
  cluster: ClusterAccess,
  catalogs: CloudsnapCatalogs,
): Promise<DueCloudsnaps> {
  const now = new Date(input.at);
  const { store } = cluster;
  const [policies, assignments, volumes, nodes, operations] = await Promise.all([
    store.policies.list(),
    store.policies.assignments(),
    store.volumes.list(),
    store.nodes.list(),
    store.operations.list(),
  ]);
  const busy = new Set(
    operations
      .filter((op) => CATALOG_WRITERS.has(op.kind) && !FINISHED_OPERATION_STATES.includes(op.state))
      .map((op) => op.volumeId),
  );
  const liveness = cluster.liveness();
  const result: DueCloudsnaps = { due: [], skipped: [] };
  for (const assignment of assignments) {
    const volume = volumes.find((candidate) => candidate.id === assignment.volumeId);
    const policy = policies.find((candidate) => candidate.name === assignment.policy);
    // A volume deleted, or a policy deleted as it was assigned (no transactions): nothing to take.
    if (volume === undefined || policy === undefined) continue;
    const skip = (reason: string) => result.skipped.push({ volume: volume.name, reason });
    if (busy.has(volume.id)) {
      skip("a cloudsnap or retention of it is still running");
      continue;
    }
    const due = dueSchedule(policy.schedules, await catalogs(volume.id), now);
    if (due === undefined) continue;
    const node =
      volume.attachedNode ??
      liveNodeFor(
        nodes,
        liveness,
        volume.id,
        volume.replicas.map((replica) => replica.node),
      );
    if (node === undefined) {
      skip("no node is live to upload it");
      continue;
    }
    const slot = due.slot.toISOString();
    const start = (attempt: string): CloudsnapStart => ({
      kind: "cloudsnap",
      volume: volume.name,
      node,
      requestToken: requestToken("cloudsnap", volume.id, due.schedule, slot, attempt),
      params: {
        schedule: due.schedule,
        ...(assignment.group === undefined ? {} : { group: assignment.group }),
      },
    });
    result.due.push({
      volume: volume.name,
      volumeId: volume.id,
      policy: policy.name,
      schedule: due.schedule,
      slot,
      operation: start("1"),
      secondAttempt: start("2"),
    });
  }
  return result;
}
