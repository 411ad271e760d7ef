import { z } from "zod";
import {
  type RecoveryFinishedDetail,
  RecoveryHow,
  type RedundancyRestoredDetail,
  StrataDetailType,
  type StrataEventEntry,
  strataEvent,
} from "../../core/events.js";
import { describeTaskError, TaskError } from "../shared/errors.js";

/** One volume's outcome, as the workflows' operation loop leaves it. */
const VolumeOutcome = z.discriminatedUnion("outcome", [
  z.object({
    volume: z.string(),
    outcome: z.literal("restored"),
    bytesCopied: z.number().int().nonnegative(),
  }),
  z.object({ volume: z.string(), outcome: z.literal("failed"), reason: z.string().nullable() }),
]);

export const ReportRecoveryInput = z.object({
  workflow: z.enum(["node-loss", "az-failure"]),
  execution: z.string().min(1),
  subject: z.string().min(1),
  how: RecoveryHow.default("re-replicated"),
  results: z.array(VolumeOutcome).default([]),
  unplanned: z.array(z.object({ volume: z.string(), reason: z.string() })).default([]),
  /** A Catch path's error output ({Error, Cause}), when the workflow stopped short. */
  error: TaskError.optional(),
});
export type ReportRecoveryInput = z.infer<typeof ReportRecoveryInput>;

export interface RecoveryReport {
  restored: number;
  failed: number;
  /** True when every affected volume is back at its replication factor. */
  complete: boolean;
}

/**
 * The end of a recovery, as events: "Strata Volume Redundancy Restored" for each volume back at its
 * replication factor, and one "Strata Recovery Finished" that lists what could not be done and why.
 */
export async function reportRecovery(
  input: ReportRecoveryInput,
  clusterName: string,
  publish: (events: StrataEventEntry[]) => Promise<unknown>,
): Promise<RecoveryReport> {
  const restored = input.results.flatMap((result) => (result.outcome === "restored" ? [result] : []));
  const failed = [
    ...input.results.flatMap((result) =>
      result.outcome === "failed"
        ? [{ volume: result.volume, reason: result.reason ?? "the operation failed" }]
        : [],
    ),
    ...input.unplanned,
  ];
  const events = restored.map((result) =>
    strataEvent(StrataDetailType.redundancyRestored, {
      clusterName,
      volume: result.volume,
      execution: input.execution,
      how: input.how,
      bytesCopied: result.bytesCopied,
    } satisfies RedundancyRestoredDetail),
  );
  const error = input.error === undefined ? undefined : describeTaskError(input.error);
  events.push(
    strataEvent(StrataDetailType.recoveryFinished, {
      clusterName,
      workflow: input.workflow,
      execution: input.execution,
      subject: input.subject,
      restored: restored.map((result) => result.volume),
      failed,
      ...(error === undefined ? {} : { error }),
    } satisfies RecoveryFinishedDetail),
  );
  await publish(events);
  return {
    restored: restored.length,
    failed: failed.length,
    complete: failed.length === 0 && error === undefined,
  };
}
