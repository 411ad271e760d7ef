import { mkdir, statfs } from "node:fs/promises";
import { DriveTag } from "../../core/drive-sets.js";
import { awsEvent } from "./aws/aws-event.js";
import { DRIVE_PATH_TAG, type LocalEc2, type LocalVolume } from "./aws/local-ec2.js";
import type { NodeSpec } from "./node-spec.js";

/**
 * The local nodes as the local cloud's EC2 sees them (DESIGN.md, Drive sets): each node's data
 * directory is one drive, tagged with the cluster and the node's id (its drive set), attached to
 * an instance of its zone's node group. Whichever instance holds the drive serves the node, so a
 * lost instance's node comes back wherever the workflows move its drive.
 */
export class NodeInstances {
  constructor(
    private readonly ec2: LocalEc2,
    private readonly clusterName: string,
  ) {}

  /** The drive of `nodeId`'s drive set, if it was ever made. */
  drive(nodeId: string): LocalVolume | undefined {
    return this.ec2
      .volumes()
      .find(
        (volume) =>
          volume.tags[DriveTag.cluster] === this.clusterName && volume.tags[DriveTag.driveSet] === nodeId,
      );
  }

  /** The running instance holding the node's drive set, if one does. */
  instanceOf(nodeId: string): string | undefined {
    const instanceId = this.drive(nodeId)?.attachment?.instanceId;
    if (instanceId === undefined) return undefined;
    return this.ec2.instance(instanceId).state === "running" ? instanceId : undefined;
  }

  /**
   * Makes sure a running instance holds the node's drive set: the first time, a new instance and a
   * new drive; after its instance was lost, a new instance the drive is attached to (as an operator
   * replacing a node by hand would). Returns the instance.
   */
  async ensureInstance(spec: NodeSpec): Promise<string> {
    const holding = this.instanceOf(spec.id);
    if (holding !== undefined) return holding;
    const instance = this.ec2.launchInstance({ nodegroup: this.nodeGroupOf(spec.zone) });
    const drive = this.drive(spec.id);
    if (drive === undefined) {
      this.ec2.createVolume({
        zone: spec.zone,
        sizeBytes: await filesystemSize(spec.dataDir),
        tags: {
          [DriveTag.cluster]: this.clusterName,
          [DriveTag.driveSet]: spec.id,
          [DRIVE_PATH_TAG]: spec.dataDir,
        },
        attachTo: { instanceId: instance.id },
      });
    } else {
      if (drive.attachment !== undefined) this.ec2.detachVolume({ volumeId: drive.id });
      this.ec2.attachVolume({ volumeId: drive.id, instanceId: instance.id, device: "/dev/xvdf" });
    }
    return instance.id;
  }

  /** The node's instance is lost, as a hardware failure or a Spot reclaim would lose it. */
  loseInstance(nodeId: string): string | undefined {
    const instanceId = this.instanceOf(nodeId);
    if (instanceId !== undefined) this.ec2.terminateInstance(instanceId);
    return instanceId;
  }

  /** What the node group does after losing an instance when it is kept at its size: start another. */
  launchReplacement(zone: string): string {
    return this.ec2.launchInstance({ nodegroup: this.nodeGroupOf(zone) }).id;
  }

  /**
   * What AWS says when it shifts traffic away from an impaired zone and back (zonal autoshift):
   * the zone by its id, as in AWS.
   */
  autoshift(zone: string, phase: "In Progress" | "Completed") {
    const awayFrom = this.ec2.availabilityZones().find((candidate) => candidate.name === zone)?.id ?? zone;
    const notes =
      phase === "In Progress"
        ? "AWS has started an autoshift for an impaired Availability Zone."
        : "The autoshift has ended: the Availability Zone is healthy again.";
    return awsEvent("aws.arc-zonal-shift", `Autoshift ${phase}`, [], {
      version: "0.0.1",
      data: "",
      metadata: { awayFrom, notes },
    });
  }

  private nodeGroupOf(zone: string): string {
    const group = this.ec2.nodegroups().find((candidate) => candidate.zone === zone);
    if (group === undefined) throw new Error(`the local cloud has no node group in zone ${zone}`);
    return group.name;
  }
}

async function filesystemSize(dir: string): Promise<number> {
  await mkdir(dir, { recursive: true });
  const stats = await statfs(dir);
  return stats.blocks * stats.bsize;
}
