import { z } from "zod";
import { type ReplacementLeases, releaseReplacement } from "../../core/state/replacement-claims.js";
import { type DriveSetClients, detach, driveSet } from "../shared/drive-set.js";
import { TransientError } from "../shared/errors.js";

export const ReleaseReplacementInput = z.object({
  nodeId: z.string().min(1),
  toInstanceId: z.string().min(1),
});
export type ReleaseReplacementInput = z.infer<typeof ReleaseReplacementInput>;

export interface ReleasedReplacement {
  /** The lost node's drives that had reached the replacement, detached from it. */
  detached: string[];
}

/**
 * Takes back a drive move that failed (node-loss then re-replicates): the lost node's drives that
 * reached the replacement are detached from it (forced: no agent may serve half a drive set), and
 * the claim on the replacement is released once none is left there, so another lost node may have
 * it. Another node's claim is left alone: a move refused for it attached nothing. Safe to run
 * again: a drive still detaching is a transient error the state machine retries.
 */
export async function releaseReplacementInstance(
  input: ReleaseReplacementInput,
  clients: DriveSetClients & { leases: ReplacementLeases },
): Promise<ReleasedReplacement> {
  const onReplacement = (await driveSet(clients, input.nodeId)).filter(
    (drive) => drive.Attachments?.[0]?.InstanceId === input.toInstanceId,
  );
  for (const drive of onReplacement) {
    if (drive.Attachments?.[0]?.State !== "detaching")
      await detach(clients.ec2, drive.VolumeId!, input.toInstanceId);
  }
  if (onReplacement.length > 0) {
    const left = (await driveSet(clients, input.nodeId)).filter(
      (drive) => drive.Attachments?.[0]?.InstanceId === input.toInstanceId,
    );
    if (left.length > 0) {
      throw new TransientError(
        `detaching the drives of ${input.nodeId} from ${input.toInstanceId}: ${left.map((drive) => drive.VolumeId).join(", ")} still there`,
      );
    }
  }
  await releaseReplacement(clients.leases, input.toInstanceId, input.nodeId);
  return { detached: onReplacement.map((drive) => drive.VolumeId!) };
}
