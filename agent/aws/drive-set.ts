import { randomBytes } from "node:crypto";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { CreateTagsCommand, type EC2Client, paginateDescribeVolumes, type Volume } from "@aws-sdk/client-ec2";
import { DriveTag } from "../../core/drive-sets.js";
import type { Logger } from "../log.js";
import type { DriveSpec } from "../pool.js";
import {
  type DriveOwner,
  deviceOfVolume,
  formatDrive,
  mountDrive,
  probeDevice,
  readDriveOwner,
  unmountDrive,
  writeDriveOwner,
} from "./drive-devices.js";

export interface DriveSetClaim {
  ec2: EC2Client;
  clusterName: string;
  instanceId: string;
  /** Where the by-id links to the NVMe devices are (/dev/disk/by-id on an instance). */
  byIdDir: string;
  /** The agent's --data-dir: drive sets live under <root>/drive-sets/<id>. */
  root: string;
  log: Logger;
  /**
   * Takes this instance for a new node before its drives are named, unless a lost node's recovery
   * took it first as that node's replacement; resolves with the node the instance is taken for.
   * Without it (an agent with no state table), nothing else can claim the instance.
   */
  takeInstance?: (nodeId: string) => Promise<string>;
  /** How long, and how often, to look for the drives of the lost node this instance replaces. */
  moveWait?: { timeoutMs: number; intervalMs: number };
}

/** move-drives attaches a lost node's drives within seconds of claiming its replacement. */
const DEFAULT_MOVE_WAIT = { timeoutMs: 5 * 60_000, intervalMs: 5_000 };

/** The node an instance's drives make it: what the agent serves as. */
export interface ClaimedDriveSet {
  /** The drive set's id, which is the node's id. */
  nodeId: string;
  zone: string;
  /** Each mounted at <root>/drive-sets/<id>/drives/<volume id>. */
  drives: DriveSpec[];
  volumeIds: string[];
}

/**
 * Finds the drive set on this instance (DESIGN.md, Drive sets): the EBS volumes attached to it and
 * tagged with the cluster, by EC2's own records rather than by device names. Drives with no drive
 * set yet (new ones, from the node group's launch template) are named: more drives for the node the
 * others already make, the lost node this instance replaces, or else a new node. Each drive is
 * formatted if it is blank, mounted under <root>/drive-sets/<id>/drives/<volume id>, and checked to
 * be this drive set's.
 */
export async function claimDriveSet(claim: DriveSetClaim): Promise<ClaimedDriveSet> {
  let volumes = await attachedDrives(claim);
  let nodeId = driveSetOn(claim, volumes);
  if (nodeId === undefined) {
    const fresh = `node-${randomBytes(5).toString("hex")}`;
    nodeId = claim.takeInstance === undefined ? fresh : await claim.takeInstance(fresh);
    if (nodeId !== fresh) volumes = await awaitMovedDrives(claim, nodeId);
  }
  await nameNewDrives(claim, volumes, nodeId);
  const zones = new Set(volumes.map((volume) => volume.AvailabilityZone));
  const zone = volumes[0]!.AvailabilityZone!;
  if (zones.size > 1) throw new Error(`the drives of instance ${claim.instanceId} are in several zones`);
  const drives: DriveSpec[] = [];
  for (const volume of volumes) {
    const path = join(claim.root, "drive-sets", nodeId, "drives", volume.VolumeId!);
    await prepareDrive(
      claim,
      { cluster: claim.clusterName, driveSet: nodeId, volumeId: volume.VolumeId! },
      path,
    );
    drives.push({ path });
  }
  const volumeIds = volumes.map((volume) => volume.VolumeId!);
  claim.log.info({ nodeId, zone, instanceId: claim.instanceId, volumeIds }, "drive set ready");
  return { nodeId, zone, drives, volumeIds };
}

async function attachedDrives(claim: DriveSetClaim): Promise<Volume[]> {
  const volumes: Volume[] = [];
  const pages = paginateDescribeVolumes(
    { client: claim.ec2 },
    {
      Filters: [
        { Name: "attachment.instance-id", Values: [claim.instanceId] },
        { Name: `tag:${DriveTag.cluster}`, Values: [claim.clusterName] },
      ],
    },
  );
  for await (const page of pages)
    for (const volume of page.Volumes ?? []) {
      // A launch template's volume tags go on every volume it makes, the root volume too: a drive
      // is one made to outlive its instance, so that a replacement can take it.
      const attachment = volume.Attachments?.find((a) => a.InstanceId === claim.instanceId);
      if (attachment?.DeleteOnTermination === true)
        claim.log.info({ volumeId: volume.VolumeId }, "not a drive: deleted with its instance");
      else volumes.push(volume);
    }
  if (volumes.length === 0)
    throw new Error(
      `no EBS volume tagged ${DriveTag.cluster}=${claim.clusterName} and kept when its instance terminates ` +
        `(DeleteOnTermination false) is attached to instance ${claim.instanceId}: give the node group's ` +
        "launch template such a data volume (deploy/kubernetes/README.md)",
    );
  // One order on every start, so a drive set's drives are listed (and mounted) alike each time.
  return volumes.sort((a, b) => a.VolumeId!.localeCompare(b.VolumeId!));
}

const driveSetOf = (volume: Volume) =>
  volume.Tags?.find((tag) => tag.Key === DriveTag.driveSet)?.Value || undefined;

/** The drive set the instance's drives name, if any; refused when they name more than one. */
function driveSetOn(claim: DriveSetClaim, volumes: Volume[]): string | undefined {
  const sets = new Set(volumes.map(driveSetOf).filter((set) => set !== undefined));
  if (sets.size > 1) {
    const which = volumes.map((volume) => `${volume.VolumeId} (${driveSetOf(volume) ?? "none"})`).join(", ");
    throw new Error(
      `instance ${claim.instanceId} holds drives of ${sets.size} drive sets (${which}): one instance serves ` +
        `one node; detach the drives of all but one ${DriveTag.driveSet}`,
    );
  }
  return [...sets][0];
}

/**
 * A lost node's recovery took this instance as that node's replacement before this agent could take
 * it for a new node: the lost node's drives are on their way (move-drives attaches them right after
 * its claim). Its drives are waited for; the instance's own new drives then join that node.
 */
async function awaitMovedDrives(claim: DriveSetClaim, nodeId: string): Promise<Volume[]> {
  const { timeoutMs, intervalMs } = claim.moveWait ?? DEFAULT_MOVE_WAIT;
  claim.log.info(
    { nodeId, instanceId: claim.instanceId },
    "this instance replaces a lost node: waiting for its drives",
  );
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const volumes = await attachedDrives(claim);
    if (driveSetOn(claim, volumes) === nodeId) return volumes;
    if (Date.now() >= deadline)
      throw new Error(
        `instance ${claim.instanceId} is the replacement of lost node ${nodeId}, but that node's drives were not ` +
          `attached within ${timeoutMs / 1000} s: the agent looks again on its next start`,
      );
    await sleep(intervalMs);
  }
}

/** Tags the drives that name no drive set yet as drives of `nodeId`. */
async function nameNewDrives(claim: DriveSetClaim, volumes: Volume[], nodeId: string): Promise<void> {
  const unnamed = volumes
    .filter((volume) => driveSetOf(volume) === undefined)
    .map((volume) => volume.VolumeId!);
  if (unnamed.length === 0) return;
  await claim.ec2.send(
    new CreateTagsCommand({ Resources: unnamed, Tags: [{ Key: DriveTag.driveSet, Value: nodeId }] }),
  );
  const joined = unnamed.length < volumes.length;
  claim.log.info(
    { nodeId, volumeIds: unnamed },
    joined ? "drives joined the drive set" : "new drive set named",
  );
}

/**
 * Formats a blank drive, mounts it, and checks the drive is the one its tags say. Anything else on
 * the device (another filesystem, a partition table, unknown bytes) is refused and left untouched:
 * a volume tagged by mistake must not lose its data.
 */
async function prepareDrive(claim: DriveSetClaim, owner: DriveOwner, mountPoint: string): Promise<void> {
  const device = await deviceOfVolume(claim.byIdDir, owner.volumeId);
  const content = await probeDevice(device);
  if (content.kind === "foreign")
    throw new Error(
      `EBS volume ${owner.volumeId} (${device}) holds ${content.description}: refusing to format or use it; ` +
        `detach it, or remove its ${DriveTag.cluster} tag`,
    );
  if (content.kind === "blank") {
    claim.log.info({ volumeId: owner.volumeId, device }, "formatting a new drive");
    await formatDrive(device);
  }
  await mountDrive(device, mountPoint);
  const recorded = await readDriveOwner(mountPoint);
  if (recorded === undefined) {
    // A new drive, or one whose formatting was cut short before this record was written.
    await writeDriveOwner(mountPoint, owner);
    return;
  }
  if (
    recorded.cluster !== owner.cluster ||
    recorded.driveSet !== owner.driveSet ||
    recorded.volumeId !== owner.volumeId
  ) {
    await unmountDrive(mountPoint);
    throw new Error(
      `EBS volume ${owner.volumeId} holds drive ${recorded.volumeId} of drive set ${recorded.driveSet} in cluster ` +
        `${recorded.cluster}, but is tagged as drive set ${owner.driveSet} of cluster ${owner.cluster}: refusing to serve it`,
    );
  }
}
