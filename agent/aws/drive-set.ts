import { randomBytes } from "node:crypto";
import { join } from "node:path";
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
}

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
 * set yet (new ones, from the node group's launch template) are named: a new node, or more drives
 * for the node the others already make. Each drive is formatted if it is blank, mounted under
 * <root>/drive-sets/<id>/drives/<volume id>, and checked to be this drive set's.
 */
export async function claimDriveSet(claim: DriveSetClaim): Promise<ClaimedDriveSet> {
  const volumes = await attachedDrives(claim);
  const nodeId = await nameDriveSet(claim, volumes);
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

/** The drive set's id: the one its tagged drives carry, else a new one, tagged on every drive without. */
async function nameDriveSet(claim: DriveSetClaim, volumes: Volume[]): Promise<string> {
  const setOf = (volume: Volume) => volume.Tags?.find((tag) => tag.Key === DriveTag.driveSet)?.Value;
  const sets = new Set(volumes.map(setOf).filter((set): set is string => set !== undefined && set !== ""));
  if (sets.size > 1) {
    const which = volumes.map((volume) => `${volume.VolumeId} (${setOf(volume) ?? "none"})`).join(", ");
    throw new Error(
      `instance ${claim.instanceId} holds drives of ${sets.size} drive sets (${which}): one instance serves ` +
        `one node; detach the drives of all but one ${DriveTag.driveSet}`,
    );
  }
  const nodeId = [...sets][0] ?? `node-${randomBytes(5).toString("hex")}`;
  const unnamed = volumes.filter((volume) => !setOf(volume)).map((volume) => volume.VolumeId!);
  if (unnamed.length > 0) {
    await claim.ec2.send(
      new CreateTagsCommand({ Resources: unnamed, Tags: [{ Key: DriveTag.driveSet, Value: nodeId }] }),
    );
    claim.log.info(
      { nodeId, volumeIds: unnamed },
      sets.size === 0 ? "new drive set named" : "drives joined the drive set",
    );
  }
  return nodeId;
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
