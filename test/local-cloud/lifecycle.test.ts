import { AutoScalingClient, CompleteLifecycleActionCommand } from "@aws-sdk/client-auto-scaling";
import { DescribeInstancesCommand, DescribeVolumesCommand, EC2Client } from "@aws-sdk/client-ec2";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { AwsEvent } from "../../infra/local/aws/aws-event.js";
import { LOCAL_ACCOUNT_ID } from "../../infra/local/aws/identity.js";
import { DRIVE_PATH_TAG, LocalEc2 } from "../../infra/local/aws/local-ec2.js";
import { eventually } from "../support/eventually.js";
import { CLIENT_CONFIG, type LocalCloud, refusal, startLocalCloud } from "./aws-harness.js";

/** local-a's group has a terminate hook, local-b's a launch hook, local-c's none. */
const HOOKED = {
  nodegroups: [
    { zone: "local-a", terminateLifecycleHook: "strata-drain" },
    { zone: "local-b", launchLifecycleHook: "strata-join" },
    { zone: "local-c" },
  ],
};

let cloud: LocalCloud;
let autoScaling: AutoScalingClient;

beforeAll(async () => {
  cloud = await startLocalCloud(HOOKED);
  autoScaling = new AutoScalingClient(CLIENT_CONFIG);
});

afterAll(async () => {
  autoScaling?.destroy();
  await cloud?.close();
});

const eventsSince = (from: number) => cloud.events.slice(from);
const stateChanges = (events: AwsEvent[]) =>
  events
    .filter((e) => e["detail-type"] === "EC2 Instance State-change Notification")
    .map((e) => (e.detail as { state: string }).state);

function expectEnvelope(event: AwsEvent | undefined, source: string, detailType: string) {
  expect(event).toMatchObject({ version: "0", source, "detail-type": detailType, account: LOCAL_ACCOUNT_ID });
  expect(event?.id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/);
  expect(event?.time).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
  expect(event?.region).toBe("local");
}

describe("instance state-change events", () => {
  it("are emitted for every state, in AWS's envelope", () => {
    const from = cloud.events.length;
    const instance = cloud.world.launchInstance({ nodegroup: "strata-test-local-c" });
    cloud.world.stopInstance(instance.id);
    cloud.world.startInstance(instance.id);
    cloud.world.terminateInstance(instance.id);
    const events = eventsSince(from);
    expect(stateChanges(events)).toEqual([
      "pending",
      "running",
      "stopping",
      "stopped",
      "pending",
      "running",
      "shutting-down",
      "terminated",
    ]);
    expect(events.every((e) => e["detail-type"] === "EC2 Instance State-change Notification")).toBe(true);
    expectEnvelope(events[0], "aws.ec2", "EC2 Instance State-change Notification");
    expect(events[0]).toMatchObject({
      resources: [`arn:aws:ec2:local:${LOCAL_ACCOUNT_ID}:instance/${instance.id}`],
      detail: { "instance-id": instance.id, state: "pending" },
    });
    expect(Object.keys(events[0]!.detail).sort()).toEqual(["instance-id", "state"]);
  });
});

describe("a terminate lifecycle hook", () => {
  it("holds the instance in Terminating:Wait until CompleteLifecycleAction, by token", async () => {
    const instance = cloud.world.launchInstance({ nodegroup: "strata-test-local-a" });
    const drive = cloud.world.createVolume({
      zone: "local-a",
      sizeBytes: 1024,
      tags: { [DRIVE_PATH_TAG]: "/tmp/d1" },
      attachTo: { instanceId: instance.id },
    });
    const from = cloud.events.length;
    cloud.world.terminateInstance(instance.id);
    cloud.world.terminateInstance(instance.id); // a repeat changes nothing

    const [action, ...rest] = eventsSince(from);
    expect(rest).toEqual([]);
    expectEnvelope(action, "aws.autoscaling", "EC2 Instance-terminate Lifecycle Action");
    const group = cloud.world.nodegroup("strata-test-local-a")!;
    expect(action?.resources).toEqual([cloud.world.autoScalingGroupArn(group)]);
    expect(action?.resources[0]).toMatch(
      new RegExp(
        `^arn:aws:autoscaling:local:${LOCAL_ACCOUNT_ID}:autoScalingGroup:[0-9a-f-]+:autoScalingGroupName/eks-strata-test-local-a$`,
      ),
    );
    const detail = action?.detail as Record<string, string>;
    expect(detail).toEqual({
      LifecycleActionToken: expect.stringMatching(/^[0-9a-f-]{36}$/),
      AutoScalingGroupName: "eks-strata-test-local-a",
      LifecycleHookName: "strata-drain",
      EC2InstanceId: instance.id,
      LifecycleTransition: "autoscaling:EC2_INSTANCE_TERMINATING",
      Origin: "AutoScalingGroup",
      Destination: "EC2",
    });
    expect(cloud.world.instance(instance.id)).toMatchObject({
      state: "running",
      lifecycleState: "Terminating:Wait",
    });
    expect(cloud.world.volume(drive.id).attachment?.instanceId).toBe(instance.id);

    await autoScaling.send(
      new CompleteLifecycleActionCommand({
        AutoScalingGroupName: detail["AutoScalingGroupName"],
        LifecycleHookName: detail["LifecycleHookName"],
        LifecycleActionToken: detail["LifecycleActionToken"],
        LifecycleActionResult: "CONTINUE",
      }),
    );
    expect(cloud.world.instance(instance.id).state).toBe("terminated");
    expect(cloud.world.volume(drive.id).attachment).toBeUndefined();
    expect(stateChanges(eventsSince(from))).toEqual(["shutting-down", "terminated"]);

    const twice = await refusal(
      autoScaling.send(
        new CompleteLifecycleActionCommand({
          AutoScalingGroupName: detail["AutoScalingGroupName"],
          LifecycleHookName: detail["LifecycleHookName"],
          LifecycleActionToken: detail["LifecycleActionToken"],
          LifecycleActionResult: "CONTINUE",
        }),
      ),
    );
    expect(twice.name).toBe("ValidationError");
    expect(twice.message).toContain("No active Lifecycle Action found");
    expect((twice.$metadata as { httpStatusCode: number }).httpStatusCode).toBe(400);
  });

  it("completes by instance id too, and ABANDON terminates as well", async () => {
    const instance = cloud.world.launchInstance({ nodegroup: "strata-test-local-a" });
    cloud.world.terminateInstance(instance.id);
    await autoScaling.send(
      new CompleteLifecycleActionCommand({
        AutoScalingGroupName: "eks-strata-test-local-a",
        LifecycleHookName: "strata-drain",
        InstanceId: instance.id,
        LifecycleActionResult: "ABANDON",
      }),
    );
    expect(cloud.world.instance(instance.id).state).toBe("terminated");
  });

  it("refuses a wrong group, hook or result with ValidationError", async () => {
    const instance = cloud.world.launchInstance({ nodegroup: "strata-test-local-a" });
    cloud.world.terminateInstance(instance.id);
    const complete = (
      AutoScalingGroupName: string,
      LifecycleHookName: string,
      LifecycleActionResult: string,
    ) =>
      refusal(
        autoScaling.send(
          new CompleteLifecycleActionCommand({
            AutoScalingGroupName,
            LifecycleHookName,
            InstanceId: instance.id,
            LifecycleActionResult,
          }),
        ),
      );
    expect((await complete("eks-strata-test-local-b", "strata-drain", "CONTINUE")).name).toBe(
      "ValidationError",
    );
    expect((await complete("eks-strata-test-local-a", "other-hook", "CONTINUE")).name).toBe(
      "ValidationError",
    );
    expect((await complete("eks-strata-test-local-a", "strata-drain", "MAYBE")).name).toBe("ValidationError");
    expect(cloud.world.instance(instance.id).state).toBe("running");
  });

  it("lets the instance go when the hook times out", async () => {
    const events: AwsEvent[] = [];
    const world = LocalEc2.create(
      {
        clusterName: "c",
        nodegroups: [{ zone: "local-a", terminateLifecycleHook: "h" }],
        lifecycleHookTimeoutMs: 50,
      },
      { onEvent: (e) => events.push(e) },
    );
    const instance = world.launchInstance({ nodegroup: "c-local-a" });
    world.terminateInstance(instance.id);
    expect(world.instance(instance.id).state).toBe("running");
    await eventually(
      async () => world.instance(instance.id).state === "terminated",
      "the hook to time out",
      5000,
    );
    expect(world.pendingLifecycleActions()).toEqual([]);
    world.close();
  });
});

describe("a launch lifecycle hook", () => {
  it("announces the launch and puts the instance in service on CONTINUE", async () => {
    const from = cloud.events.length;
    const instance = cloud.world.launchInstance({ nodegroup: "strata-test-local-b" });
    const events = eventsSince(from);
    expect(stateChanges(events)).toEqual(["pending", "running"]);
    const launch = events.find((e) => e["detail-type"] === "EC2 Instance-launch Lifecycle Action");
    expectEnvelope(launch, "aws.autoscaling", "EC2 Instance-launch Lifecycle Action");
    expect(launch?.detail).toMatchObject({
      AutoScalingGroupName: "eks-strata-test-local-b",
      LifecycleHookName: "strata-join",
      EC2InstanceId: instance.id,
      LifecycleTransition: "autoscaling:EC2_INSTANCE_LAUNCHING",
      Origin: "EC2",
      Destination: "AutoScalingGroup",
    });
    expect(cloud.world.instance(instance.id).lifecycleState).toBe("Pending:Wait");
    await autoScaling.send(
      new CompleteLifecycleActionCommand({
        AutoScalingGroupName: "eks-strata-test-local-b",
        LifecycleHookName: "strata-join",
        LifecycleActionToken: (launch!.detail as { LifecycleActionToken: string }).LifecycleActionToken,
        LifecycleActionResult: "CONTINUE",
      }),
    );
    expect(cloud.world.instance(instance.id)).toMatchObject({
      state: "running",
      lifecycleState: "InService",
    });
  });
});

describe("snapshot and restore", () => {
  it("bring back instances, drives and a pending lifecycle action after a restart", async () => {
    const held = cloud.world.launchInstance({ nodegroup: "strata-test-local-a", tags: { role: "held" } });
    const kept = cloud.world.launchInstance({ nodegroup: "strata-test-local-c" });
    const drive = cloud.world.createVolume({
      zone: "local-c",
      sizeBytes: 2 * 1024 ** 3,
      tags: { [DRIVE_PATH_TAG]: "/tmp/kept" },
      attachTo: { instanceId: kept.id, device: "/dev/xvdq" },
    });
    cloud.world.terminateInstance(held.id);
    const [pending] = cloud.world.pendingLifecycleActions().filter((a) => a.instanceId === held.id);
    const saved = JSON.parse(JSON.stringify(cloud.world.snapshot())) as unknown;
    await cloud.close();

    cloud = await startLocalCloud({}, saved);
    const ec2 = new EC2Client(CLIENT_CONFIG);
    const restoredAutoScaling = new AutoScalingClient(CLIENT_CONFIG);
    try {
      const instances = await ec2.send(new DescribeInstancesCommand({ InstanceIds: [held.id, kept.id] }));
      expect(
        instances.Reservations?.flatMap((r) => r.Instances ?? []).map((i) => [i.InstanceId, i.State?.Name]),
      ).toEqual([
        [held.id, "running"],
        [kept.id, "running"],
      ]);
      const volumes = await ec2.send(new DescribeVolumesCommand({ VolumeIds: [drive.id] }));
      expect(volumes.Volumes?.[0]).toMatchObject({
        Size: 2,
        State: "in-use",
        Attachments: [{ InstanceId: kept.id, Device: "/dev/xvdq" }],
        Tags: [{ Key: DRIVE_PATH_TAG, Value: "/tmp/kept" }],
      });
      expect(cloud.world.nodegroup("strata-test-local-a")?.terminateLifecycleHook).toBe("strata-drain");

      await restoredAutoScaling.send(
        new CompleteLifecycleActionCommand({
          AutoScalingGroupName: "eks-strata-test-local-a",
          LifecycleHookName: "strata-drain",
          LifecycleActionToken: pending?.token,
          LifecycleActionResult: "CONTINUE",
        }),
      );
      expect(cloud.world.instance(held.id).state).toBe("terminated");
      expect(stateChanges(cloud.events)).toEqual(["shutting-down", "terminated"]);
    } finally {
      ec2.destroy();
      restoredAutoScaling.destroy();
    }
  });

  it("refuses a snapshot that is not one", () => {
    expect(() => LocalEc2.restore({ version: 2 })).toThrow();
  });
});

describe("the Auto Scaling wire format", () => {
  const post = (body: string) =>
    fetch(cloud.endpoints.environment["AWS_ENDPOINT_URL_AUTO_SCALING"]!, {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded" },
      body,
    });

  it("answers in the query protocol's documents: <Action>Result and ResponseMetadata, ErrorResponse", async () => {
    const instance = cloud.world.launchInstance({ nodegroup: "strata-test-local-a" });
    cloud.world.terminateInstance(instance.id);
    const ok = await post(
      `Action=CompleteLifecycleAction&Version=2011-01-01&AutoScalingGroupName=eks-strata-test-local-a&LifecycleHookName=strata-drain&InstanceId=${instance.id}&LifecycleActionResult=CONTINUE`,
    );
    expect(ok.status).toBe(200);
    expect(await ok.text()).toMatch(
      /^<\?xml version="1.0" encoding="UTF-8"\?>\n<CompleteLifecycleActionResponse xmlns="http:\/\/autoscaling.amazonaws.com\/doc\/2011-01-01\/"><CompleteLifecycleActionResult><\/CompleteLifecycleActionResult><ResponseMetadata><RequestId>[0-9a-f-]{36}<\/RequestId><\/ResponseMetadata><\/CompleteLifecycleActionResponse>$/,
    );
    const refused = await post("Action=CompleteLifecycleAction&Version=2011-01-01&AutoScalingGroupName=g");
    expect(refused.status).toBe(400);
    expect(await refused.text()).toMatch(
      /<ErrorResponse xmlns="http:\/\/autoscaling.amazonaws.com\/doc\/2011-01-01\/"><Error><Type>Sender<\/Type><Code>ValidationError<\/Code><Message>1 validation error detected: .*<\/Message><\/Error><RequestId>[0-9a-f-]{36}<\/RequestId><\/ErrorResponse>$/,
    );
    const unknown = await post("Action=DeleteAutoScalingGroup&Version=2011-01-01");
    expect(await unknown.text()).toContain("<Code>InvalidAction</Code>");
  });
});
