import {
  DescribeInstancesCommand,
  DescribeVolumesCommand,
  type EC2Client,
  type Instance,
} from "@aws-sdk/client-ec2";
import { DescribeNodegroupCommand, type EKSClient } from "@aws-sdk/client-eks";
import { z } from "zod";
import { DriveTag, NodeGroupTag } from "../../core/drive-sets.js";
import { millisecondsFromEnv } from "../../core/env-settings.js";
import { type ReplacementLeases, replacementHolder } from "../../core/state/replacement-claims.js";
import { classifyEc2Error } from "../shared/ec2-errors.js";

export const FindReplacementInput = z.object({
  nodeId: z.string().min(1),
  zone: z.string().min(1),
  instanceId: z.string().nullable(),
  /** Auto Scaling holds the lost instance in Terminating:Wait: it replaces it. */
  lifecycle: z.object({}).loose().nullable(),
  detectedAt: z.iso.datetime(),
});
export type FindReplacementInput = z.infer<typeof FindReplacementInput>;

/**
 * found: an instance in the lost node's zone and node group, holding no drive set, to move the
 * drives to; expected: none yet, but the node group will launch one (poll again); none: none will
 * come in time, so node-loss re-replicates instead; scale-in: Auto Scaling terminates the instance
 * to shrink its group, so none comes, and node-loss moves the node's replicas off while it serves.
 */
export type Replacement =
  | { status: "found"; instanceId: string; detail: string }
  | { status: "expected" | "none" | "scale-in"; instanceId: null; detail: string };

/**
 * How long node-loss waits for a replacement before it re-replicates instead. EKS replaces a
 * managed node in two to four minutes; waiting longer leaves volumes one replica short for nothing
 * gained when no replacement comes. STRATA_REPLACEMENT_WAIT_MS shortens it for tests and the demo.
 */
export const REPLACEMENT_WAIT_MS = 5 * 60_000;

export interface ReplacementClients {
  ec2: EC2Client;
  eks: EKSClient;
  /** Where move-drives claims a replacement for a lost node (see core/state/replacement-claims.ts). */
  leases: ReplacementLeases;
  clock?: () => Date;
}

/** One look, for node-loss's Wait loop, for the instance that will take over a lost node's drives. */
export async function findReplacement(
  input: FindReplacementInput,
  clients: ReplacementClients,
): Promise<Replacement> {
  const none = (detail: string): Replacement => ({ status: "none", instanceId: null, detail });
  if (input.instanceId === null) return none(`the instance of ${input.nodeId} is unknown`);
  const lost = await describeInstance(clients.ec2, input.instanceId);
  const nodeGroup = tag(lost, NodeGroupTag.nodeGroup);
  const cluster = tag(lost, NodeGroupTag.cluster);
  if (lost === undefined || nodeGroup === undefined || cluster === undefined)
    return none(`instance ${input.instanceId} belongs to no EKS node group`);

  const members = await nodeGroupInstances(clients.ec2, cluster, nodeGroup);
  if (input.lifecycle !== null) {
    // A terminate hook holds the instance: Auto Scaling replaces it only when the group wants more
    // instances than it keeps without it (a failed health check, a rebalance); else it scales in.
    const desired = await desiredSize(clients.eks, cluster, nodeGroup);
    const kept = members.filter((instance) => instance.InstanceId !== input.instanceId).length;
    if (kept >= desired)
      return {
        status: "scale-in",
        instanceId: null,
        detail: `node group ${nodeGroup} wants ${desired} nodes and keeps ${kept} without ${input.instanceId}: a scale-in, nothing replaces ${input.nodeId}`,
      };
  }
  const candidates = members.filter(
    (instance) =>
      instance.InstanceId !== input.instanceId && instance.Placement?.AvailabilityZone === input.zone,
  );
  const holding = await instancesHoldingDriveSets(clients.ec2, candidates);
  const taken = await takenForOthers(clients.leases, candidates, input.nodeId);
  const free = candidates
    .filter((instance) => !holding.has(instance.InstanceId!) && !taken.has(instance.InstanceId!))
    .sort((a, b) => (a.LaunchTime?.getTime() ?? 0) - (b.LaunchTime?.getTime() ?? 0));
  const running = free.find((instance) => instance.State?.Name === "running");
  if (running !== undefined) {
    return {
      status: "found",
      instanceId: running.InstanceId!,
      detail: `${running.InstanceId} in ${input.zone} (node group ${nodeGroup}) takes over ${input.nodeId}'s drives`,
    };
  }

  const waitMs = millisecondsFromEnv("STRATA_REPLACEMENT_WAIT_MS", REPLACEMENT_WAIT_MS);
  const waited = (clients.clock?.() ?? new Date()).getTime() - Date.parse(input.detectedAt);
  if (waited > waitMs)
    return none(`no replacement for ${input.nodeId} in ${input.zone} within ${Math.round(waitMs / 1000)} s`);
  if (free.length > 0) return expected(`${free[0]!.InstanceId} is starting in ${input.zone}`);
  if (input.lifecycle !== null) return expected(`Auto Scaling is replacing ${input.instanceId}`);
  const desired = await desiredSize(clients.eks, cluster, nodeGroup);
  // The lost instance counts while it still runs (its agent died, not the instance): Auto Scaling
  // replaces only instances that are gone or fail its health checks, so none will come for it.
  const serving = members.length;
  if (serving < desired)
    return expected(
      `node group ${nodeGroup} wants ${desired} nodes and has ${serving}: a replacement will launch`,
    );
  return none(
    `node group ${nodeGroup} has its ${desired} nodes: no replacement will launch for ${input.nodeId}`,
  );
}

const expected = (detail: string): Replacement => ({ status: "expected", instanceId: null, detail });

async function desiredSize(eks: EKSClient, cluster: string, nodeGroup: string): Promise<number> {
  const { nodegroup } = await eks.send(
    new DescribeNodegroupCommand({ clusterName: cluster, nodegroupName: nodeGroup }),
  );
  return nodegroup?.scalingConfig?.desiredSize ?? 0;
}

const tag = (instance: Instance | undefined, key: string) =>
  instance?.Tags?.find((t) => t.Key === key)?.Value;

async function describeInstance(ec2: EC2Client, instanceId: string): Promise<Instance | undefined> {
  try {
    const answer = await ec2.send(new DescribeInstancesCommand({ InstanceIds: [instanceId] }));
    return answer.Reservations?.flatMap((reservation) => reservation.Instances ?? [])[0];
  } catch (error) {
    if (error instanceof Error && error.name === "InvalidInstanceID.NotFound") return undefined;
    throw classifyEc2Error(error, `describing instance ${instanceId}`);
  }
}

/**
 * The node group's instances that are starting or running. Node group names are unique within an
 * EKS cluster, not within the account, so the cluster's tag is matched too.
 */
async function nodeGroupInstances(ec2: EC2Client, cluster: string, nodeGroup: string): Promise<Instance[]> {
  const instances: Instance[] = [];
  let NextToken: string | undefined;
  do {
    const answer = await ec2
      .send(
        new DescribeInstancesCommand({
          Filters: [
            { Name: `tag:${NodeGroupTag.cluster}`, Values: [cluster] },
            { Name: `tag:${NodeGroupTag.nodeGroup}`, Values: [nodeGroup] },
            { Name: "instance-state-name", Values: ["pending", "running"] },
          ],
          NextToken,
        }),
      )
      .catch((error: unknown) => {
        throw classifyEc2Error(error, `listing the instances of node group ${nodeGroup}`);
      });
    instances.push(...(answer.Reservations?.flatMap((reservation) => reservation.Instances ?? []) ?? []));
    NextToken = answer.NextToken;
  } while (NextToken !== undefined);
  return instances;
}

/** Which of `instances` already hold some node's drive set (they serve that node). */
async function instancesHoldingDriveSets(
  ec2: EC2Client,
  instances: readonly Instance[],
): Promise<Set<string>> {
  if (instances.length === 0) return new Set();
  const answer = await ec2
    .send(
      new DescribeVolumesCommand({
        Filters: [
          { Name: "attachment.instance-id", Values: instances.map((instance) => instance.InstanceId!) },
          { Name: "tag-key", Values: [DriveTag.driveSet] },
        ],
      }),
    )
    .catch((error: unknown) => {
      throw classifyEc2Error(error, "listing the drives of candidate instances");
    });
  return new Set(
    (answer.Volumes ?? []).flatMap((volume) =>
      (volume.Attachments ?? []).map((attachment) => attachment.InstanceId!),
    ),
  );
}

/**
 * Which of `instances` another lost node's recovery claimed as its replacement: its drives may not
 * be there yet, but they are on the way. This node's own claim (a retry after a failed move) counts
 * as free.
 */
async function takenForOthers(
  leases: ReplacementLeases,
  instances: readonly Instance[],
  nodeId: string,
): Promise<Set<string>> {
  const holders = await Promise.all(
    instances.map(
      async (instance) =>
        [instance.InstanceId!, await replacementHolder(leases, instance.InstanceId!)] as const,
    ),
  );
  return new Set(
    holders.flatMap(([instanceId, holder]) =>
      holder !== undefined && holder !== nodeId ? [instanceId] : [],
    ),
  );
}
