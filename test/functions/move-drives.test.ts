import {
  AttachVolumeCommand,
  DescribeInstancesCommand,
  DescribeVolumesCommand,
  EC2Client,
  EC2ServiceException,
} from "@aws-sdk/client-ec2";
import { type AwsClientStub, mockClient } from "aws-sdk-client-mock";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { DriveTag } from "../../core/drive-sets.js";
import { claimReplacement } from "../../core/state/replacement-claims.js";
import { type MovedDrives, moveDrives, NODE_RETURN_WAIT_MS } from "../../functions/move-drives/move.js";
import { releaseReplacementInstance } from "../../functions/release-replacement/release.js";
import { RefusedError, TransientError } from "../../functions/shared/errors.js";
import type { LocalInstance } from "../../infra/local/aws/local-ec2.js";
import { GiB } from "../core/fixtures.js";
import { storePerSuite } from "../core/state-harness.js";
import { CLIENT_CONFIG, type LocalCloud, startLocalCloud } from "../local-cloud/aws-harness.js";
import { CLUSTER, NOW } from "./support.js";

const GROUP_A = `${CLUSTER}-local-a`;
const GROUP_B = `${CLUSTER}-local-b`;

/** Where move-drives claims replacements: a real table. */
const suite = storePerSuite();

describe("moving a drive set through the local EC2 endpoint", () => {
  let cloud: LocalCloud;
  let ec2: EC2Client;
  let nodes = 0;

  beforeAll(async () => {
    cloud = await startLocalCloud({ clusterName: CLUSTER });
    ec2 = new EC2Client(CLIENT_CONFIG);
  });

  afterAll(async () => {
    ec2?.destroy();
    await cloud?.close();
  });

  /** A node's instance holding its drive set (two drives tagged as the node's), in `group`. */
  function nodeWithDrives(group = GROUP_A, count = 2) {
    const nodeId = `node-${++nodes}`;
    const instance = cloud.world.launchInstance({ nodegroup: group });
    const drives = Array.from({ length: count }, () =>
      cloud.world.createVolume({
        zone: instance.zone,
        sizeBytes: 100 * GiB,
        tags: { [DriveTag.cluster]: CLUSTER, [DriveTag.driveSet]: nodeId },
        attachTo: { instanceId: instance.id },
      }),
    );
    return { nodeId, instance, driveIds: drives.map((drive) => drive.id) };
  }

  const move = (nodeId: string, to: LocalInstance, zone = "local-a") =>
    moveDrives(
      { nodeId, zone, toInstanceId: to.id },
      { ec2, clusterName: CLUSTER, leases: suite.store.leases, clock: () => NOW },
    );

  /** As the state machine's Retry on Strata.Transient would, without its backoff. */
  async function moveWithRetries(
    nodeId: string,
    to: LocalInstance,
  ): Promise<{ moved: MovedDrives; transient: string[] }> {
    const transient: string[] = [];
    for (let attempt = 1; attempt <= 5; attempt++) {
      try {
        return { moved: await move(nodeId, to), transient };
      } catch (error) {
        if (!(error instanceof TransientError)) throw error;
        transient.push(error.message);
      }
    }
    throw new Error(`still moving after 5 attempts: ${transient.join(" | ")}`);
  }

  const attachedTo = (driveIds: string[]) =>
    driveIds.map(
      (id) =>
        cloud.world.volume(id).attachment && {
          instanceId: cloud.world.volume(id).attachment?.instanceId,
          state: cloud.world.volume(id).attachment?.state,
        },
    );

  it("attaches the drives of a terminated instance to the replacement", async () => {
    const lost = nodeWithDrives();
    cloud.world.terminateInstance(lost.instance.id);
    const replacement = cloud.world.launchInstance({ nodegroup: GROUP_A });

    const { moved } = await moveWithRetries(lost.nodeId, replacement);

    expect(moved).toEqual({
      volumeIds: expect.arrayContaining(lost.driveIds),
      movedAt: NOW.toISOString(),
      deadline: new Date(NOW.getTime() + NODE_RETURN_WAIT_MS).toISOString(),
    });
    expect(moved.volumeIds).toHaveLength(2);
    expect(attachedTo(lost.driveIds)).toEqual(
      lost.driveIds.map(() => ({ instanceId: replacement.id, state: "attached" })),
    );
  });

  it("detaches the drives from a lost instance still running, then attaches them on a retry", async () => {
    const lost = nodeWithDrives();
    const replacement = cloud.world.launchInstance({ nodegroup: GROUP_A });

    const { moved, transient } = await moveWithRetries(lost.nodeId, replacement);

    expect(transient[0]).toContain(`is detaching from ${lost.instance.id}`);
    expect(moved.volumeIds.sort()).toEqual([...lost.driveIds].sort());
    expect(attachedTo(lost.driveIds)).toEqual(
      lost.driveIds.map(() => ({ instanceId: replacement.id, state: "attached" })),
    );
  });

  it("leaves drives already on the replacement alone when run again", async () => {
    const lost = nodeWithDrives();
    const replacement = cloud.world.launchInstance({ nodegroup: GROUP_A });
    await moveWithRetries(lost.nodeId, replacement);
    const changes = cloud.changes.length;

    const again = await move(lost.nodeId, replacement);

    expect(again.volumeIds.sort()).toEqual([...lost.driveIds].sort());
    expect(cloud.changes.length).toBe(changes);
  });

  it("moves only the drives tagged with this cluster and this drive set", async () => {
    const lost = nodeWithDrives();
    const foreign = cloud.world.createVolume({
      zone: "local-a",
      sizeBytes: GiB,
      tags: { [DriveTag.cluster]: "another-cluster", [DriveTag.driveSet]: lost.nodeId },
      attachTo: { instanceId: lost.instance.id },
    });
    const replacement = cloud.world.launchInstance({ nodegroup: GROUP_A });

    const { moved } = await moveWithRetries(lost.nodeId, replacement);

    expect(moved.volumeIds).not.toContain(foreign.id);
    expect(cloud.world.volume(foreign.id).attachment?.instanceId).toBe(lost.instance.id);
  });

  it("refuses a replacement in another zone, naming both zones", async () => {
    const lost = nodeWithDrives();
    const elsewhere = cloud.world.launchInstance({ nodegroup: GROUP_B });

    const refused = move(lost.nodeId, elsewhere);

    await expect(refused).rejects.toBeInstanceOf(RefusedError);
    await expect(refused).rejects.toThrow(/is in local-b, not local-a/);
    expect(attachedTo(lost.driveIds).every((attachment) => attachment?.instanceId === lost.instance.id)).toBe(
      true,
    );
  });

  it("refuses, before moving any, a drive set with a drive in another zone", async () => {
    const lost = nodeWithDrives();
    const strayed = cloud.world.createVolume({
      zone: "local-b",
      sizeBytes: GiB,
      tags: { [DriveTag.cluster]: CLUSTER, [DriveTag.driveSet]: lost.nodeId },
    });
    const replacement = cloud.world.launchInstance({ nodegroup: GROUP_A });

    const refused = move(lost.nodeId, replacement);

    await expect(refused).rejects.toMatchObject({
      name: "Strata.Refused",
      message: expect.stringContaining(`drive ${strayed.id} of ${lost.nodeId} is in local-b, not local-a`),
    });
    expect(attachedTo(lost.driveIds).every((attachment) => attachment?.instanceId === lost.instance.id)).toBe(
      true,
    );
  });

  it("refuses a node with no drives tagged as its drive set", async () => {
    const replacement = cloud.world.launchInstance({ nodegroup: GROUP_A });

    await expect(move("node-without-drives", replacement)).rejects.toMatchObject({
      name: "Strata.Refused",
      message: "no drives are tagged as the drive set of node-without-drives",
    });
  });

  it("refuses, before moving any drive, a replacement another lost node's recovery claimed", async () => {
    const first = nodeWithDrives();
    const second = nodeWithDrives();
    cloud.world.terminateInstance(first.instance.id);
    cloud.world.terminateInstance(second.instance.id);
    const replacement = cloud.world.launchInstance({ nodegroup: GROUP_A });
    await moveWithRetries(first.nodeId, replacement);

    const refused = move(second.nodeId, replacement);

    await expect(refused).rejects.toMatchObject({
      name: "Strata.Refused",
      message: `instance ${replacement.id} is the replacement of ${first.nodeId} already: the drives of ${second.nodeId} do not move there`,
    });
    expect(attachedTo(second.driveIds).map((attachment) => attachment?.instanceId)).not.toContain(
      replacement.id,
    );
    expect(await suite.store.leases.holder(`replacement/${replacement.id}`)).toBe(first.nodeId);
  });

  it("takes a move cut short back: the drives that reached the replacement detached, and the replacement free again", async () => {
    const lost = nodeWithDrives();
    cloud.world.terminateInstance(lost.instance.id);
    const replacement = cloud.world.launchInstance({ nodegroup: GROUP_A });
    await moveWithRetries(lost.nodeId, replacement);
    const release = () =>
      releaseReplacementInstance(
        { nodeId: lost.nodeId, toInstanceId: replacement.id },
        { ec2, clusterName: CLUSTER, leases: suite.store.leases },
      );

    // As the state machine's Retry on Strata.Transient would: a detach takes a moment.
    let released = await release().catch((error: unknown) => {
      if (error instanceof TransientError) return undefined;
      throw error;
    });
    released ??= await release();

    expect(released.detached.sort()).toEqual([...lost.driveIds].sort());
    expect(attachedTo(lost.driveIds)).toEqual(lost.driveIds.map(() => undefined));
    expect(await suite.store.leases.holder(`replacement/${replacement.id}`)).toBeUndefined();
    // Another lost node may have it now.
    const next = nodeWithDrives();
    cloud.world.terminateInstance(next.instance.id);
    await moveWithRetries(next.nodeId, replacement);
    expect(attachedTo(next.driveIds).map((attachment) => attachment?.instanceId)).toEqual(
      next.driveIds.map(() => replacement.id),
    );
  });

  it("leaves another node's claim and drives alone when a refused move is taken back", async () => {
    const holder = nodeWithDrives();
    const refused = nodeWithDrives();
    const replacement = cloud.world.launchInstance({ nodegroup: GROUP_A });
    await claimReplacement(suite.store.leases, replacement.id, holder.nodeId);

    const released = await releaseReplacementInstance(
      { nodeId: refused.nodeId, toInstanceId: replacement.id },
      { ec2, clusterName: CLUSTER, leases: suite.store.leases },
    );

    expect(released).toEqual({ detached: [] });
    expect(await suite.store.leases.holder(`replacement/${replacement.id}`)).toBe(holder.nodeId);
    expect(attachedTo(refused.driveIds).map((attachment) => attachment?.instanceId)).toEqual(
      refused.driveIds.map(() => refused.instance.id),
    );
  });

  it("waits, as a transient error, for a replacement that is not running", async () => {
    const lost = nodeWithDrives();
    const replacement = cloud.world.launchInstance({ nodegroup: GROUP_A });
    cloud.world.stopInstance(replacement.id);

    await expect(move(lost.nodeId, replacement)).rejects.toMatchObject({
      name: "Strata.Transient",
      message: expect.stringContaining("is stopped, not running yet"),
    });
  });
});

describe("EC2 refusals no local endpoint produces", () => {
  let ec2: EC2Client;
  let mocked: AwsClientStub<EC2Client>;

  beforeAll(() => {
    process.env["AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED"] = "true";
    ec2 = new EC2Client(CLIENT_CONFIG);
    mocked = mockClient(ec2);
  });

  afterEach(() => {
    mocked.reset();
  });

  afterAll(() => {
    mocked.restore();
    ec2.destroy();
  });

  /** A running replacement in local-a, and one free drive of node-1 there. */
  function aFreeDriveAndItsReplacement() {
    mocked.on(DescribeInstancesCommand).resolves({
      Reservations: [
        {
          Instances: [
            {
              InstanceId: "i-replacement",
              Placement: { AvailabilityZone: "local-a" },
              State: { Name: "running", Code: 16 },
              BlockDeviceMappings: [],
            },
          ],
        },
      ],
    });
    mocked
      .on(DescribeVolumesCommand)
      .resolves({ Volumes: [{ VolumeId: "vol-1", AvailabilityZone: "local-a", Attachments: [] }] });
  }

  const ec2Error = (name: string, message: string) =>
    new EC2ServiceException({ name, message, $fault: "client", $metadata: { httpStatusCode: 400 } });

  const move = () =>
    moveDrives(
      { nodeId: "node-1", zone: "local-a", toInstanceId: "i-replacement" },
      { ec2, clusterName: CLUSTER, leases: suite.store.leases },
    );

  it.each([
    ["IncorrectState", "Strata.Transient"],
    ["RequestLimitExceeded", "Strata.Transient"],
    ["InvalidVolume.ZoneMismatch", "Strata.Refused"],
  ])("turns AttachVolume's %s into %s, naming the drive and the code", async (code, workflowError) => {
    aFreeDriveAndItsReplacement();
    mocked.on(AttachVolumeCommand).rejects(ec2Error(code, "refused by EC2"));

    await expect(move()).rejects.toMatchObject({
      name: workflowError,
      message: `attaching vol-1 to i-replacement: ${code}: refused by EC2`,
    });
  });

  it("turns throttling of the drive lookup into Strata.Transient", async () => {
    aFreeDriveAndItsReplacement();
    mocked.on(DescribeVolumesCommand).rejects(ec2Error("RequestLimitExceeded", "Request limit exceeded."));

    await expect(move()).rejects.toMatchObject({ name: "Strata.Transient" });
  });

  it("passes an error it does not know through unchanged", async () => {
    aFreeDriveAndItsReplacement();
    const unknown = ec2Error("UnauthorizedOperation", "You are not authorized to perform this operation.");
    mocked.on(AttachVolumeCommand).rejects(unknown);

    await expect(move()).rejects.toBe(unknown);
  });
});
