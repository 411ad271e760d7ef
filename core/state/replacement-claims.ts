/**
 * Which lost node a replacement instance is taken for. Two nodes lost in one zone may both find the
 * same new instance free (it holds no drive set until a move attaches one), and two drive sets on
 * one instance would be two nodes on one agent. So move-drives claims the instance, naming the lost
 * node, before it attaches anything: a lease (leases.ts) in the state table, taken by a conditional
 * put, that find-replacement reads to skip instances another node's recovery took. An agent starting
 * on a new instance takes the same claim before it names a new node (agent/aws/startup.ts).
 */
import { StrataError } from "../errors.js";
import type { LeaseStore } from "./leases.js";

/**
 * As long as the node-loss that took it may run (its executions time out after a day). A claim
 * whose move succeeded keeps nothing from anyone: the instance holds the drive set by then.
 */
export const REPLACEMENT_CLAIM_TTL_MS = 24 * 60 * 60_000;

const leaseName = (instanceId: string) => `replacement/${instanceId}`;

export type ReplacementLeases = Pick<LeaseStore, "acquire" | "holder" | "release">;

/** The instance is another node's replacement already. */
export class ReplacementClaimedError extends StrataError {
  constructor(message: string) {
    super("FAILED_PRECONDITION", message);
    this.name = "ReplacementClaimedError";
  }
}

/** Takes `instanceId` for `nodeId` (again, on a retry); refused when another node's recovery took it. */
export async function claimReplacement(
  leases: ReplacementLeases,
  instanceId: string,
  nodeId: string,
): Promise<void> {
  try {
    await leases.acquire(leaseName(instanceId), nodeId, REPLACEMENT_CLAIM_TTL_MS);
  } catch (error) {
    if (!(error instanceof StrataError && error.code === "FAILED_PRECONDITION")) throw error;
    const holder = await leases.holder(leaseName(instanceId));
    throw new ReplacementClaimedError(
      `instance ${instanceId} is the replacement of ${holder ?? "another lost node"} already: the drives of ${nodeId} do not move there`,
    );
  }
}

/** The lost node whose recovery took `instanceId`, if any. */
export function replacementHolder(
  leases: ReplacementLeases,
  instanceId: string,
): Promise<string | undefined> {
  return leases.holder(leaseName(instanceId));
}

/** Gives `instanceId` up for others; a claim another node holds is left alone. */
export function releaseReplacement(
  leases: ReplacementLeases,
  instanceId: string,
  nodeId: string,
): Promise<void> {
  return leases.release(leaseName(instanceId), nodeId);
}
