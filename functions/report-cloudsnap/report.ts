import { z } from "zod";
import {
  type CloudsnapCompletedDetail,
  type CloudsnapFailedDetail,
  type RestoreCompletedDetail,
  type RestoreFailedDetail,
  type SnapshotCompletedDetail,
  type SnapshotFailedDetail,
  StrataDetailType,
  type StrataEventEntry,
  strataEvent,
} from "../../core/events.js";
import { describeTaskError, TaskError } from "../shared/errors.js";

/**
 * What the workflows leave in their state by the time they report: the Map item of a scheduled
 * cloudsnap or the restore's input, with the results of the states that ran. Read loosely, as any
 * of them may be missing (a restore refused before it started has only its input, if even that).
 */
const Status = z.object({
  error: z.string().nullable().optional(),
  result: z.record(z.string(), z.unknown()).optional(),
});
const Subject = z.object({
  copy: z.unknown().optional(),
  volume: z.unknown().optional(),
  cloudsnap: z.unknown().optional(),
  schedule: z.unknown().optional(),
  status: Status.optional().catch(undefined),
  error: TaskError.optional().catch(undefined),
  retention: z
    .object({ expired: z.array(z.string()) })
    .optional()
    .catch(undefined),
  retentionStatus: Status.extend({ state: z.string() }).optional().catch(undefined),
  retentionError: TaskError.optional().catch(undefined),
});
type Subject = z.infer<typeof Subject>;

export const ReportCloudsnapInput = z.object({
  workflow: z.enum(["cloudsnap", "restore"]),
  outcome: z.enum(["completed", "failed"]),
  execution: z.string().min(1),
  /** The state as it is (`$`): the Map item, or the restore's input with what the states added. */
  subject: z.unknown(),
});
export type ReportCloudsnapInput = z.infer<typeof ReportCloudsnapInput>;

export interface CloudsnapReport {
  volume: string;
  outcome: "completed" | "failed";
  cloudsnap?: string;
  snapshot?: string;
}

/**
 * Puts one "Strata Cloudsnap Completed/Failed", "Strata Snapshot Completed/Failed" (a scheduled
 * snapshot) or "Strata Restore Completed/Failed" event, saying what was made, what retention
 * deleted, or why it failed in the words of the error that stopped it.
 */
export async function reportCloudsnap(
  input: ReportCloudsnapInput,
  clusterName: string,
  publish: (events: StrataEventEntry[]) => Promise<unknown>,
): Promise<CloudsnapReport> {
  const subject: Subject = Subject.safeParse(input.subject).data ?? {};
  const volume = text(subject.volume) ?? "(unknown)";
  const common = { clusterName, execution: input.execution, volume };
  const made = text(subject.status?.result?.["cloudsnap"]);
  if (input.workflow === "cloudsnap") {
    const schedule = text(subject.schedule);
    const scheduled = schedule === undefined ? {} : { schedule };
    if (subject.copy === "snapshot") {
      return reportSnapshot(input.outcome, subject, { ...common, ...scheduled }, publish);
    }
    if (input.outcome === "completed" && made !== undefined) {
      const retentionError = whyRetentionFailed(subject);
      // A group's one operation made a cloudsnap of each of its volumes.
      const all = z.array(z.string()).safeParse(subject.status?.result?.["cloudsnaps"]);
      await publish([
        strataEvent(StrataDetailType.cloudsnapCompleted, {
          ...common,
          ...scheduled,
          cloudsnap: made,
          cloudsnaps: all.success ? all.data : [made],
          expired: retentionError === undefined ? (subject.retention?.expired ?? []) : [],
          ...(retentionError === undefined ? {} : { retentionError }),
        } satisfies CloudsnapCompletedDetail),
      ]);
      return { volume, outcome: "completed", cloudsnap: made };
    }
    await publish([
      strataEvent(StrataDetailType.cloudsnapFailed, {
        ...common,
        ...scheduled,
        reason: whyFailed(subject),
      } satisfies CloudsnapFailedDetail),
    ]);
    return { volume, outcome: "failed" };
  }
  const cloudsnap = text(subject.cloudsnap) ?? "(unknown)";
  if (input.outcome === "completed") {
    await publish([
      strataEvent(StrataDetailType.restoreCompleted, {
        ...common,
        cloudsnap,
      } satisfies RestoreCompletedDetail),
    ]);
    return { volume, outcome: "completed", cloudsnap };
  }
  await publish([
    strataEvent(StrataDetailType.restoreFailed, {
      ...common,
      cloudsnap,
      reason: whyFailed(subject),
    } satisfies RestoreFailedDetail),
  ]);
  return { volume, outcome: "failed", cloudsnap };
}

/** A scheduled snapshot's event: its operation took the snapshot and applied retention both. */
async function reportSnapshot(
  outcome: CloudsnapReport["outcome"],
  subject: Subject,
  common: { clusterName: string; execution: string; volume: string; schedule?: string },
  publish: (events: StrataEventEntry[]) => Promise<unknown>,
): Promise<CloudsnapReport> {
  const result = ScheduledSnapshotResult.safeParse(subject.status?.result);
  if (outcome === "completed" && result.success) {
    const { snapshot, volumes, deleted } = result.data;
    await publish([
      strataEvent(StrataDetailType.snapshotCompleted, {
        ...common,
        volumes,
        snapshot,
        expired: deleted,
      } satisfies SnapshotCompletedDetail),
    ]);
    return { volume: common.volume, outcome: "completed", snapshot };
  }
  await publish([
    strataEvent(StrataDetailType.snapshotFailed, {
      ...common,
      reason: whyFailed(subject),
    } satisfies SnapshotFailedDetail),
  ]);
  return { volume: common.volume, outcome: "failed" };
}

/** What a scheduled-snapshot operation returns (agent/volumes/scheduled-snapshots.ts). */
const ScheduledSnapshotResult = z.object({
  snapshot: z.string(),
  volumes: z.array(z.string()),
  deleted: z.array(z.string()),
});

/** A task's error (its Catch output) says most; else the failed operation's own error. */
function whyFailed(subject: Subject): string {
  if (subject.error !== undefined) return describeTaskError(subject.error);
  return subject.status?.error ?? "the operation did not succeed";
}

function whyRetentionFailed(subject: Subject): string | undefined {
  if (subject.retentionError !== undefined) return describeTaskError(subject.retentionError);
  const status = subject.retentionStatus;
  if (status === undefined || status.state === "succeeded") return undefined;
  return status.error ?? `the retention operation ended ${status.state}`;
}

const text = (value: unknown) => (typeof value === "string" ? value : undefined);
