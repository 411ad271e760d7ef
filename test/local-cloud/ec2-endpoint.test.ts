import {
  AttachVolumeCommand,
  CreateTagsCommand,
  DescribeInstancesCommand,
  DescribeVolumesCommand,
  DetachVolumeCommand,
  EC2Client,
  paginateDescribeInstances,
  TerminateInstancesCommand,
} from "@aws-sdk/client-ec2";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { DRIVE_PATH_TAG, type LocalInstance, type LocalVolume } from "../../infra/local/aws/local-ec2.js";
import { CLIENT_CONFIG, type LocalCloud, refusal, startLocalCloud } from "./aws-harness.js";

let cloud: LocalCloud;
let ec2: EC2Client;

beforeAll(async () => {
  cloud = await startLocalCloud();
  ec2 = new EC2Client(CLIENT_CONFIG);
});

afterAll(async () => {
  ec2?.destroy();
  await cloud?.close();
});

/** Each test gets its own instances and drives, told apart by a run tag. */
let run = 0;
let tag: Record<string, string>;
beforeEach(() => {
  run += 1;
  tag = { "strata:test-run": String(run) };
});

const runFilter = () => ({ Name: "tag:strata:test-run", Values: [String(run)] });

function node(zone: string): { instance: LocalInstance; drive: LocalVolume } {
  const instance = cloud.world.launchInstance({
    nodegroup: `strata-test-${zone}`,
    tags: { ...tag, Name: `node-${zone}` },
  });
  const drive = cloud.world.createVolume({
    zone,
    sizeBytes: 64 * 1024 ** 2,
    tags: { ...tag, [DRIVE_PATH_TAG]: `/tmp/strata/drives/${instance.id}` },
    attachTo: { instanceId: instance.id },
  });
  return { instance, drive };
}

describe("DescribeInstances", () => {
  it("answers reservations of instances in the shape the SDK reads", async () => {
    const { instance, drive } = node("local-a");
    const answer = await ec2.send(new DescribeInstancesCommand({ InstanceIds: [instance.id] }));
    expect(answer.Reservations).toHaveLength(1);
    const [described] = answer.Reservations![0]!.Instances!;
    expect(described).toMatchObject({
      InstanceId: instance.id,
      State: { Code: 16, Name: "running" },
      Placement: { AvailabilityZone: "local-a" },
      PrivateIpAddress: "127.0.0.1",
      BlockDeviceMappings: [{ DeviceName: "/dev/xvdf", Ebs: { VolumeId: drive.id, Status: "attached" } }],
    });
    expect(described?.InstanceId).toMatch(/^i-[0-9a-f]{17}$/);
    expect(described?.LaunchTime).toBeInstanceOf(Date);
    expect(described?.LaunchTime?.getTime()).toBe(instance.launchTime);
    expect(Object.fromEntries(described!.Tags!.map((t) => [t.Key, t.Value]))).toMatchObject({
      ...tag,
      Name: "node-local-a",
      "aws:autoscaling:groupName": "eks-strata-test-local-a",
      "eks:nodegroup-name": "strata-test-local-a",
    });
  });

  it("filters by tag, tag key, zone and state, every filter having to match", async () => {
    const a = node("local-a").instance;
    const b = node("local-b").instance;
    const c = node("local-c").instance;
    cloud.world.stopInstance(c.id);
    const ids = async (...Filters: { Name: string; Values: string[] }[]) => {
      const answer = await ec2.send(new DescribeInstancesCommand({ Filters: [runFilter(), ...Filters] }));
      return (answer.Reservations ?? []).flatMap((r) => r.Instances ?? []).map((i) => i.InstanceId);
    };
    expect(await ids()).toEqual([a.id, b.id, c.id]);
    expect(await ids({ Name: "availability-zone", Values: ["local-b", "local-c"] })).toEqual([b.id, c.id]);
    expect(await ids({ Name: "instance-state-name", Values: ["running"] })).toEqual([a.id, b.id]);
    expect(await ids({ Name: "tag:Name", Values: ["node-local-a"] })).toEqual([a.id]);
    expect(
      await ids(
        { Name: "tag:Name", Values: ["node-*"] },
        { Name: "instance-state-name", Values: ["stopped"] },
      ),
    ).toEqual([c.id]);
    expect(await ids({ Name: "tag-key", Values: ["eks:nodegroup-name"] })).toEqual([a.id, b.id, c.id]);
    expect(await ids({ Name: "tag-key", Values: ["no-such-key"] })).toEqual([]);
    const stopped = await ec2.send(new DescribeInstancesCommand({ InstanceIds: [c.id] }));
    expect(stopped.Reservations![0]!.Instances![0]!.State).toEqual({ Code: 80, Name: "stopped" });
  });

  it("pages with MaxResults and NextToken", async () => {
    const launched = Array.from({ length: 7 }, () => node("local-a").instance.id);
    const first = await ec2.send(new DescribeInstancesCommand({ Filters: [runFilter()], MaxResults: 5 }));
    expect(first.Reservations).toHaveLength(5);
    expect(first.NextToken).toBeDefined();
    const seen: string[] = [];
    for await (const page of paginateDescribeInstances(
      { client: ec2, pageSize: 5 },
      { Filters: [runFilter()] },
    ))
      seen.push(...(page.Reservations ?? []).flatMap((r) => r.Instances ?? []).map((i) => i.InstanceId!));
    expect(seen).toEqual(launched);
    const tooSmall = await refusal(ec2.send(new DescribeInstancesCommand({ MaxResults: 2 })));
    expect(tooSmall.name).toBe("InvalidParameterValue");
    const withIds = await refusal(
      ec2.send(new DescribeInstancesCommand({ InstanceIds: launched, MaxResults: 5 })),
    );
    expect(withIds.name).toBe("InvalidParameterCombination");
  });

  it("refuses unknown and malformed instance ids and unknown filters", async () => {
    const unknown = await refusal(
      ec2.send(new DescribeInstancesCommand({ InstanceIds: ["i-0123456789abcdef0"] })),
    );
    expect(unknown.name).toBe("InvalidInstanceID.NotFound");
    expect(unknown.message).toBe("The instance ID 'i-0123456789abcdef0' does not exist");
    expect((unknown.$metadata as { httpStatusCode: number }).httpStatusCode).toBe(400);
    const { instance } = node("local-a");
    const several = await refusal(
      ec2.send(
        new DescribeInstancesCommand({
          InstanceIds: ["i-0123456789abcdef0", instance.id, "i-0123456789abcdef1"],
        }),
      ),
    );
    expect(several.message).toBe("The instance IDs 'i-0123456789abcdef0, i-0123456789abcdef1' do not exist");
    const malformed = await refusal(ec2.send(new DescribeInstancesCommand({ InstanceIds: ["node-1"] })));
    expect(malformed.name).toBe("InvalidInstanceID.Malformed");
    const filter = await refusal(
      ec2.send(new DescribeInstancesCommand({ Filters: [{ Name: "colour", Values: ["blue"] }] })),
    );
    expect(filter.name).toBe("InvalidParameterValue");
  });
});

describe("DescribeVolumes", () => {
  it("answers volumes with their attachments, tags, size and state", async () => {
    const { instance, drive } = node("local-b");
    const spare = cloud.world.createVolume({ zone: "local-b", sizeBytes: 3 * 1024 ** 3 + 1, tags: tag });
    const answer = await ec2.send(new DescribeVolumesCommand({ VolumeIds: [drive.id, spare.id] }));
    expect(answer.Volumes).toHaveLength(2);
    const [attached, free] = answer.Volumes!;
    expect(attached).toMatchObject({
      VolumeId: drive.id,
      Size: 1,
      State: "in-use",
      AvailabilityZone: "local-b",
      Attachments: [{ VolumeId: drive.id, InstanceId: instance.id, Device: "/dev/xvdf", State: "attached" }],
    });
    expect(attached?.CreateTime).toBeInstanceOf(Date);
    expect(attached?.Attachments?.[0]?.AttachTime).toBeInstanceOf(Date);
    expect(attached?.Tags).toContainEqual({
      Key: DRIVE_PATH_TAG,
      Value: `/tmp/strata/drives/${instance.id}`,
    });
    expect(free).toMatchObject({ VolumeId: spare.id, Size: 4, State: "available" });
    expect(free?.Attachments ?? []).toEqual([]);
  });

  it("filters by attachment, status, zone and tag", async () => {
    const a = node("local-a");
    const b = node("local-b");
    const spare = cloud.world.createVolume({ zone: "local-c", sizeBytes: 1024, tags: tag });
    const ids = async (...Filters: { Name: string; Values: string[] }[]) => {
      const answer = await ec2.send(new DescribeVolumesCommand({ Filters: [runFilter(), ...Filters] }));
      return (answer.Volumes ?? []).map((v) => v.VolumeId);
    };
    expect(await ids({ Name: "attachment.instance-id", Values: [b.instance.id] })).toEqual([b.drive.id]);
    expect(await ids({ Name: "status", Values: ["available"] })).toEqual([spare.id]);
    expect(await ids({ Name: "status", Values: ["in-use"] })).toEqual([a.drive.id, b.drive.id]);
    expect(await ids({ Name: "availability-zone", Values: ["local-a"] })).toEqual([a.drive.id]);
    expect(await ids({ Name: `tag:${DRIVE_PATH_TAG}`, Values: [`*${a.instance.id}`] })).toEqual([a.drive.id]);
    expect(await ids({ Name: "tag-key", Values: [DRIVE_PATH_TAG] })).toEqual([a.drive.id, b.drive.id]);
  });

  it("refuses an unknown volume id", async () => {
    const unknown = await refusal(
      ec2.send(new DescribeVolumesCommand({ VolumeIds: ["vol-0123456789abcdef0"] })),
    );
    expect(unknown.name).toBe("InvalidVolume.NotFound");
  });
});

describe("AttachVolume and DetachVolume", () => {
  it("moves a drive to a replacement instance in the same zone, telling the supervisor", async () => {
    const lost = node("local-a");
    const replacement = cloud.world.launchInstance({ nodegroup: "strata-test-local-a", tags: tag });
    const changesBefore = cloud.changes.length;

    const detached = await ec2.send(
      new DetachVolumeCommand({ VolumeId: lost.drive.id, InstanceId: lost.instance.id }),
    );
    expect(detached).toMatchObject({
      VolumeId: lost.drive.id,
      InstanceId: lost.instance.id,
      State: "detaching",
    });
    const free = await ec2.send(new DescribeVolumesCommand({ VolumeIds: [lost.drive.id] }));
    expect(free.Volumes?.[0]?.State).toBe("available");

    const attached = await ec2.send(
      new AttachVolumeCommand({ VolumeId: lost.drive.id, InstanceId: replacement.id, Device: "/dev/xvdg" }),
    );
    expect(attached).toMatchObject({
      VolumeId: lost.drive.id,
      InstanceId: replacement.id,
      Device: "/dev/xvdg",
      State: "attaching",
    });
    expect(attached.AttachTime).toBeInstanceOf(Date);
    const moved = await ec2.send(new DescribeVolumesCommand({ VolumeIds: [lost.drive.id] }));
    expect(moved.Volumes?.[0]).toMatchObject({
      State: "in-use",
      Attachments: [{ InstanceId: replacement.id, Device: "/dev/xvdg", State: "attached" }],
    });
    expect(cloud.changes.slice(changesBefore)).toEqual([
      {
        kind: "detached",
        volumeId: lost.drive.id,
        instanceId: lost.instance.id,
        device: "/dev/xvdf",
        tags: lost.drive.tags,
      },
      {
        kind: "attached",
        volumeId: lost.drive.id,
        instanceId: replacement.id,
        device: "/dev/xvdg",
        tags: lost.drive.tags,
      },
    ]);
  });

  it("refuses another zone, a volume in use, an instance not running, and unknown ids", async () => {
    const a = node("local-a");
    const b = node("local-b");
    const spare = cloud.world.createVolume({ zone: "local-b", sizeBytes: 1024, tags: tag });
    const attach = (VolumeId: string, InstanceId: string, Device = "/dev/xvdh") =>
      refusal(ec2.send(new AttachVolumeCommand({ VolumeId, InstanceId, Device })));

    expect((await attach(spare.id, a.instance.id)).name).toBe("InvalidVolume.ZoneMismatch");
    expect((await attach(b.drive.id, b.instance.id)).name).toBe("VolumeInUse");
    cloud.world.stopInstance(b.instance.id);
    const stopped = await attach(spare.id, b.instance.id);
    expect(stopped.name).toBe("IncorrectState");
    expect(stopped.message).toBe(`Instance '${b.instance.id}' is not 'running'.`);
    expect((await attach("vol-0123456789abcdef0", a.instance.id)).name).toBe("InvalidVolume.NotFound");
    expect((await attach(spare.id, "i-0123456789abcdef0")).name).toBe("InvalidInstanceID.NotFound");

    const notAttached = await refusal(ec2.send(new DetachVolumeCommand({ VolumeId: spare.id })));
    expect(notAttached.name).toBe("IncorrectState");
    const elsewhere = await refusal(
      ec2.send(new DetachVolumeCommand({ VolumeId: a.drive.id, InstanceId: b.instance.id, Force: true })),
    );
    expect(elsewhere.name).toBe("InvalidAttachment.NotFound");
    const missing = await refusal(
      ec2.send(new AttachVolumeCommand({ VolumeId: spare.id, InstanceId: a.instance.id, Device: "" })),
    );
    expect(missing.name).toBe("MissingParameter");
  });
});

describe("TerminateInstances", () => {
  it("shuts instances down at once, detaching their drives", async () => {
    const { instance, drive } = node("local-c");
    const eventsBefore = cloud.events.length;
    const answer = await ec2.send(new TerminateInstancesCommand({ InstanceIds: [instance.id] }));
    expect(answer.TerminatingInstances).toEqual([
      {
        InstanceId: instance.id,
        CurrentState: { Code: 32, Name: "shutting-down" },
        PreviousState: { Code: 16, Name: "running" },
      },
    ]);
    const described = await ec2.send(new DescribeInstancesCommand({ InstanceIds: [instance.id] }));
    expect(described.Reservations?.[0]?.Instances?.[0]?.State).toEqual({ Code: 48, Name: "terminated" });
    const volumes = await ec2.send(new DescribeVolumesCommand({ VolumeIds: [drive.id] }));
    expect(volumes.Volumes?.[0]?.State).toBe("available");
    expect(cloud.events.slice(eventsBefore).map((e) => (e.detail as { state: string }).state)).toEqual([
      "shutting-down",
      "terminated",
    ]);
    const again = await ec2.send(new TerminateInstancesCommand({ InstanceIds: [instance.id] }));
    expect(again.TerminatingInstances?.[0]?.PreviousState?.Name).toBe("terminated");
  });

  it("deletes the volumes made to go with the instance, a root volume's way", async () => {
    const { instance, drive } = node("local-c");
    const root = cloud.world.createVolume({
      zone: "local-c",
      sizeBytes: 64 * 1024 ** 2,
      tags: { ...tag },
      attachTo: { instanceId: instance.id, device: "/dev/xvda", deleteOnTermination: true },
    });
    const described = await ec2.send(new DescribeVolumesCommand({ VolumeIds: [root.id, drive.id] }));
    const deleteOnTermination = Object.fromEntries(
      described.Volumes!.map((v) => [v.VolumeId, v.Attachments?.[0]?.DeleteOnTermination]),
    );
    expect(deleteOnTermination).toEqual({ [root.id]: true, [drive.id]: false });
    await ec2.send(new TerminateInstancesCommand({ InstanceIds: [instance.id] }));
    const left = await ec2.send(new DescribeVolumesCommand({ Filters: [runFilter()] }));
    expect(left.Volumes?.map((v) => v.VolumeId)).toEqual([drive.id]);
  });

  it("refuses the whole call when one id is unknown", async () => {
    const { instance } = node("local-c");
    const unknown = await refusal(
      ec2.send(new TerminateInstancesCommand({ InstanceIds: [instance.id, "i-0123456789abcdef0"] })),
    );
    expect(unknown.name).toBe("InvalidInstanceID.NotFound");
    expect(cloud.world.instance(instance.id).state).toBe("running");
  });
});

describe("CreateTags", () => {
  it("tags volumes and instances, a tag already there taking the new value", async () => {
    const { instance, drive } = node("local-a");
    await ec2.send(
      new CreateTagsCommand({
        Resources: [drive.id, instance.id],
        Tags: [
          { Key: "strata:drive-set", Value: "node-7" },
          { Key: "strata:test-run", Value: "retagged" },
        ],
      }),
    );
    for (const tags of [cloud.world.volume(drive.id).tags, cloud.world.instance(instance.id).tags])
      expect(tags).toMatchObject({ "strata:drive-set": "node-7", "strata:test-run": "retagged" });
    const found = await ec2.send(
      new DescribeVolumesCommand({ Filters: [{ Name: "tag:strata:drive-set", Values: ["node-7"] }] }),
    );
    expect(found.Volumes?.map((v) => v.VolumeId)).toEqual([drive.id]);
  });

  it("tags nothing when one resource does not exist", async () => {
    const { drive } = node("local-a");
    const unknown = await refusal(
      ec2.send(
        new CreateTagsCommand({
          Resources: [drive.id, "vol-0123456789abcdef0"],
          Tags: [{ Key: "strata:drive-set", Value: "node-8" }],
        }),
      ),
    );
    expect(unknown.name).toBe("InvalidVolume.NotFound");
    expect(cloud.world.volume(drive.id).tags["strata:drive-set"]).toBeUndefined();
  });
});

describe("the EC2 wire format", () => {
  it("states a refusal as <Response><Errors><Error> with the request id", async () => {
    const response = await fetch(cloud.endpoints.environment["AWS_ENDPOINT_URL_EC2"]!, {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded" },
      body: "Action=DescribeVolumes&Version=2016-11-15&VolumeId.1=vol-0123456789abcdef0",
    });
    expect(response.status).toBe(400);
    expect(await response.text()).toMatch(
      /^<\?xml version="1.0" encoding="UTF-8"\?>\n<Response xmlns="http:\/\/ec2.amazonaws.com\/doc\/2016-11-15\/"><Errors><Error><Code>InvalidVolume.NotFound<\/Code><Message>The volume &apos;vol-0123456789abcdef0&apos; does not exist.<\/Message><\/Error><\/Errors><RequestID>[0-9a-f-]{36}<\/RequestID><\/Response>$/,
    );
  });

  it("escapes what it writes", async () => {
    const { instance } = node("local-a");
    cloud.world.instance(instance.id).tags["note"] = `<a href="x">&'</a>`;
    const answer = await ec2.send(new DescribeInstancesCommand({ InstanceIds: [instance.id] }));
    expect(answer.Reservations?.[0]?.Instances?.[0]?.Tags).toContainEqual({
      Key: "note",
      Value: `<a href="x">&'</a>`,
    });
  });
});
