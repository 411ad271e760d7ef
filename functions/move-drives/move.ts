import { DescribeInstancesCommand, type EC2Client, type Instance } from "@aws-sdk/client-ec2";
import { z } from "zod";
import { millisecondsFromEnv } from "../../core/env-settings.js";
import {
  claimReplacement,
  ReplacementClaimedError,
  type ReplacementLeases,
} from "../../core/state/replacement-claims.js";
import { attach, type DriveSetClients, detach, driveSet } from "../shared/drive-set.js";
import { classifyEc2Error } from "../shared/ec2-errors.js";
import { RefusedError, TransientError } from "../shared/errors.js";

export const MoveDrivesInput = z.object({
  nodeId: z.string().min(1),
  zone: z.string().min(1),
  toInstanceId: z.string().min(1),
});
export type MoveDrivesInput = z.infer<typeof MoveDrivesInput>;

export interface MovedDrives {
  /** The drive set's volumes, now attached to the replacement. */
  volumeIds: string[];
  movedAt: string;
  /** When node-loss stops waiting for the node to serve from its new instance, and re-replicates. */
  deadline: string;
}

/**
 * How long the node has to come back once its drives are on the replacement: its agent starts,
 * opens its pool and registers, which takes seconds; a minute and a half over that means something
 * is wrong with the instance. STRATA_NODE_RETURN_WAIT_MS changes it.
 */
export const NODE_RETURN_WAIT_MS = 2 * 60_000;

/**
 * Device names offered to AttachVolume (the range AWS recommends for EBS data volumes). The agent
 * finds its drives by volume id (the NVMe serial), never by these names.
 */
const DEVICE_NAMES = "fghijklmnop".split("").map((letter) => `/dev/sd${letter}`);

export interface DriveMoveClients extends DriveSetClients {
  /** Where the replacement is claimed for the lost node (see core/state/replacement-claims.ts). */
  leases: ReplacementLeases;
  clock?: () => Date;
}

/**
 * Moves a lost node's drive set to its replacement in the same zone: detaches each drive from the
 * lost instance (forced: its agent is gone and fenced), then attaches it to the replacement. EBS
 * volumes attach only within their zone, so a drive in another zone is refused before anything
 * moves, and a replacement another lost node's recovery claimed is refused before anything moves.
 * Safe to run again: a drive already on the replacement is left alone, and one still detaching or
 * attaching is a transient error the state machine retries with backoff.
 */
export async function moveDrives(input: MoveDrivesInput, clients: DriveMoveClients): Promise<MovedDrives> {
  const target = await replacementInstance(clients.ec2, input);
  const drives = await driveSet(clients, input.nodeId);
  for (const drive of drives) {
    if (drive.AvailabilityZone !== input.zone) {
      throw new RefusedError(
        `drive ${drive.VolumeId} of ${input.nodeId} is in ${drive.AvailabilityZone}, not ${input.zone}: EBS volumes attach only within their zone`,
      );
    }
  }
  await claimReplacement(clients.leases, input.toInstanceId, input.nodeId).catch((error: unknown) => {
    // Taken for another lost node: moving these drives there can never succeed.
    if (error instanceof ReplacementClaimedError) throw new RefusedError(error.message);
    throw error;
  });
  const pending: string[] = [];
  for (const drive of drives) {
    const attachment = drive.Attachments?.[0];
    if (attachment?.InstanceId === input.toInstanceId && attachment.State === "attached") continue;
    if (attachment !== undefined && attachment.InstanceId !== input.toInstanceId) {
      if (attachment.State !== "detaching")
        await detach(clients.ec2, drive.VolumeId!, attachment.InstanceId!);
      pending.push(`${drive.VolumeId} is detaching from ${attachment.InstanceId}`);
    } else if (attachment !== undefined) {
      pending.push(`${drive.VolumeId} is ${attachment.State} on ${input.toInstanceId}`);
    } else {
      await attach(clients.ec2, drive.VolumeId!, input.toInstanceId, freeDevice(target, pending.length));
      pending.push(`${drive.VolumeId} is attaching to ${input.toInstanceId}`);
    }
  }
  if (pending.length > 0) {
    // Detach and attach take seconds; the retry (with backoff) finds them done, instead of a Lambda
    // paid to sleep through it.
    const settled = await driveSet(clients, input.nodeId);
    const unsettled = settled.filter((drive) => {
      const attachment = drive.Attachments?.[0];
      return !(attachment?.InstanceId === input.toInstanceId && attachment.State === "attached");
    });
    if (unsettled.length > 0)
      throw new TransientError(`moving the drives of ${input.nodeId}: ${pending.join("; ")}`);
  }
  const now = clients.clock?.() ?? new Date();
  const waitMs = millisecondsFromEnv("STRATA_NODE_RETURN_WAIT_MS", NODE_RETURN_WAIT_MS);
  return {
    volumeIds: drives.map((drive) => drive.VolumeId!),
    movedAt: now.toISOString(),
    deadline: new Date(now.getTime() + waitMs).toISOString(),
  };
}

async function replacementInstance(ec2: EC2Client, input: MoveDrivesInput): Promise<Instance> {
  const answer = await ec2
    .send(new DescribeInstancesCommand({ InstanceIds: [input.toInstanceId] }))
    .catch((error: unknown) => {
      throw classifyEc2Error(error, `describing the replacement ${input.toInstanceId}`);
    });
  const instance = answer.Reservations?.flatMap((reservation) => reservation.Instances ?? [])[0];
  if (instance === undefined)
    throw new RefusedError(`the replacement instance ${input.toInstanceId} does not exist`);
  if (instance.Placement?.AvailabilityZone !== input.zone) {
    throw new RefusedError(
      `the replacement ${input.toInstanceId} is in ${instance.Placement?.AvailabilityZone}, not ${input.zone}: the drives of ${input.nodeId} cannot move there`,
    );
  }
  if (instance.State?.Name !== "running") {
    throw new TransientError(
      `the replacement ${input.toInstanceId} is ${instance.State?.Name}, not running yet`,
    );
  }
  return instance;
}

/** A device name the instance does not use yet, skipping those taken by attaches of this run. */
function freeDevice(instance: Instance, alreadyChosen: number): string {
  const used = new Set((instance.BlockDeviceMappings ?? []).map((mapping) => mapping.DeviceName));
  const free = DEVICE_NAMES.filter((name) => !used.has(name));
  const device = free[alreadyChosen];
  if (device === undefined)
    throw new RefusedError(`instance ${instance.InstanceId} has no free device name left`);
  return device;
}
