/** The EC2 calls on a node's drive set that moving it to a replacement, and taking that back, make. */
import {
  AttachVolumeCommand,
  DescribeVolumesCommand,
  DetachVolumeCommand,
  type EC2Client,
  type Volume,
} from "@aws-sdk/client-ec2";
import { DriveTag } from "../../core/drive-sets.js";
import { classifyEc2Error } from "./ec2-errors.js";
import { RefusedError } from "./errors.js";

export interface DriveSetClients {
  ec2: EC2Client;
  /** The cluster the drives are tagged with. */
  clusterName: string;
}

/** The drive set's volumes, by the cluster's and the drive set's tags (never by device name). */
export async function driveSet(clients: DriveSetClients, nodeId: string): Promise<Volume[]> {
  const answer = await clients.ec2
    .send(
      new DescribeVolumesCommand({
        Filters: [
          { Name: `tag:${DriveTag.cluster}`, Values: [clients.clusterName] },
          { Name: `tag:${DriveTag.driveSet}`, Values: [nodeId] },
        ],
      }),
    )
    .catch((error: unknown) => {
      throw classifyEc2Error(error, `finding the drives of ${nodeId}`);
    });
  const drives = answer.Volumes ?? [];
  if (drives.length === 0) throw new RefusedError(`no drives are tagged as the drive set of ${nodeId}`);
  return drives;
}

export async function detach(ec2: EC2Client, volumeId: string, instanceId: string): Promise<void> {
  await ec2
    .send(new DetachVolumeCommand({ VolumeId: volumeId, InstanceId: instanceId, Force: true }))
    .catch((error: unknown) => {
      throw classifyEc2Error(error, `detaching ${volumeId} from ${instanceId}`);
    });
}

export async function attach(
  ec2: EC2Client,
  volumeId: string,
  instanceId: string,
  device: string,
): Promise<void> {
  await ec2
    .send(new AttachVolumeCommand({ VolumeId: volumeId, InstanceId: instanceId, Device: device }))
    .catch((error: unknown) => {
      throw classifyEc2Error(error, `attaching ${volumeId} to ${instanceId}`);
    });
}
