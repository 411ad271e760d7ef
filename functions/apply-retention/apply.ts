import { z } from "zod";
import { MAX_EXPIRED_PER_OPERATION } from "../../core/state/records.js";
import type { CloudsnapCatalogs } from "../shared/cloudsnap-catalogs.js";
import type { ClusterAccess } from "../shared/cluster.js";
import { requestToken } from "../shared/request-tokens.js";
import { startOperation } from "../start-operation/start.js";
import { expiredCopies } from "./retention.js";

export const ApplyRetentionInput = z.object({
  volume: z.string().min(1),
  volumeId: z.string().min(1),
  /** The other volumes of its group, uploaded with it: their cloudsnaps expire by the same policy. */
  with: z.array(z.object({ volume: z.string().min(1), volumeId: z.string().min(1) })).default([]),
  /** The node that uploaded the cloudsnap: it deletes too. */
  node: z.string().min(1),
  policy: z.string().min(1),
  /** The cloudsnap just uploaded: names the retention, so a retried task finds its operation. */
  cloudsnap: z.string().min(1),
  /**
   * The execution's start ($$.Execution.StartTime): what maxAge is measured from, so a retried task
   * finds the same cloudsnaps expired.
   */
  at: z.iso.datetime({ offset: true }),
});
export type ApplyRetentionInput = z.input<typeof ApplyRetentionInput>;

export interface RetentionStarted {
  /** The cloudsnaps the policy no longer keeps, oldest first per schedule (at most 1000: the rest go next time). */
  expired: string[];
  /** The operation deleting them; null when there is nothing to delete. */
  operationId: string | null;
}

/**
 * Decides what the volume's policy no longer keeps, from its catalog (and its group's volumes', from
 * theirs), and starts the one operation that deletes it. The deletion itself runs on an agent: deleting a cloudsnap rewrites the volume's
 * catalog and collects its unreferenced packs, which must hold the volume's cloudsnap lease (one
 * writer per catalog) and can take long (garbage collection reads every manifest left), and the
 * cloudsnap engine (keys, packs) is the agents'. The Lambda only starts, polls and accounts.
 */
export async function applyRetention(
  input: ApplyRetentionInput,
  cluster: ClusterAccess,
  catalogs: CloudsnapCatalogs,
): Promise<RetentionStarted> {
  const { schedules } = await cluster.store.policies.get(input.policy);
  if (schedules === undefined) return { expired: [], operationId: null };
  const volumeIds = [input.volumeId, ...(input.with ?? []).map((other) => other.volumeId)];
  const expired = (
    await Promise.all(
      volumeIds.map(async (volumeId) =>
        expiredCopies(schedules, await catalogs(volumeId), new Date(input.at)),
      ),
    )
  )
    .flat()
    .slice(0, MAX_EXPIRED_PER_OPERATION);
  if (expired.length === 0) return { expired, operationId: null };
  const started = await startOperation(
    {
      kind: "cloudsnap-retention",
      volume: input.volume,
      node: input.node,
      requestToken: requestToken("retention", input.cloudsnap),
      params: { cloudsnaps: expired },
    },
    cluster,
  );
  return { expired, operationId: started.operationId };
}
