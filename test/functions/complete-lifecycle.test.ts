import {
  AutoScalingClient,
  AutoScalingServiceException,
  CompleteLifecycleActionCommand,
} from "@aws-sdk/client-auto-scaling";
import { type AwsClientStub, mockClient } from "aws-sdk-client-mock";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import {
  type CompleteLifecycleInput,
  completeLifecycle,
} from "../../functions/complete-lifecycle/complete.js";
import { CLIENT_CONFIG, type LocalCloud, startLocalCloud } from "../local-cloud/aws-harness.js";
import { CLUSTER } from "./support.js";

describe("completing a terminate lifecycle action through the local Auto Scaling endpoint", () => {
  let cloud: LocalCloud;
  let autoScaling: AutoScalingClient;

  beforeAll(async () => {
    cloud = await startLocalCloud({
      clusterName: CLUSTER,
      nodegroups: [{ zone: "local-a", terminateLifecycleHook: "strata-drain" }],
    });
    autoScaling = new AutoScalingClient(CLIENT_CONFIG);
  });

  afterAll(async () => {
    autoScaling?.destroy();
    await cloud?.close();
  });

  /** An instance Auto Scaling holds in Terminating:Wait, and the action node-loss was given. */
  function heldInstance(): CompleteLifecycleInput {
    const instance = cloud.world.launchInstance({ nodegroup: `${CLUSTER}-local-a` });
    cloud.world.terminateInstance(instance.id);
    const action = cloud.world
      .pendingLifecycleActions()
      .find((pending) => pending.instanceId === instance.id);
    if (action === undefined) throw new Error("the terminate hook holds no action for the instance");
    return {
      instanceId: instance.id,
      lifecycle: {
        autoScalingGroupName: action.autoScalingGroupName,
        lifecycleHookName: action.hookName,
        lifecycleActionToken: action.token,
      },
    };
  }

  it("lets Auto Scaling terminate the instance", async () => {
    const input = heldInstance();
    expect(cloud.world.instance(input.instanceId).lifecycleState).toBe("Terminating:Wait");

    expect(await completeLifecycle(input, autoScaling)).toEqual({
      completed: true,
      detail: `${input.instanceId} may terminate`,
    });
    expect(cloud.world.instance(input.instanceId).state).toBe("terminated");
  });

  it("takes an action completed already (a second run) for done, not an error", async () => {
    const input = heldInstance();
    await completeLifecycle(input, autoScaling);

    const again = await completeLifecycle(input, autoScaling);

    expect(again.completed).toBe(false);
    expect(again.detail).toContain(`no lifecycle action is pending for ${input.instanceId}`);
  });
});

describe("Auto Scaling refusals, from a mocked client", () => {
  let autoScaling: AutoScalingClient;
  let mocked: AwsClientStub<AutoScalingClient>;

  beforeAll(() => {
    process.env["AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED"] = "true";
    autoScaling = new AutoScalingClient(CLIENT_CONFIG);
    mocked = mockClient(autoScaling);
  });

  afterEach(() => {
    mocked.reset();
  });

  afterAll(() => {
    mocked.restore();
    autoScaling.destroy();
  });

  const input: CompleteLifecycleInput = {
    instanceId: "i-lost",
    lifecycle: { autoScalingGroupName: "asg", lifecycleHookName: "hook", lifecycleActionToken: "token" },
  };
  const refusal = (name: string, message: string) =>
    new AutoScalingServiceException({ name, message, $fault: "client", $metadata: { httpStatusCode: 400 } });

  it("answers not completed when the action has timed out or is gone (ValidationError)", async () => {
    mocked
      .on(CompleteLifecycleActionCommand)
      .rejects(refusal("ValidationError", "No active Lifecycle Action found with token token"));

    expect(await completeLifecycle(input, autoScaling)).toEqual({
      completed: false,
      detail: "no lifecycle action is pending for i-lost: No active Lifecycle Action found with token token",
    });
    expect(mocked.commandCalls(CompleteLifecycleActionCommand)[0]?.args[0].input).toEqual({
      AutoScalingGroupName: "asg",
      LifecycleHookName: "hook",
      LifecycleActionToken: "token",
      InstanceId: "i-lost",
      LifecycleActionResult: "CONTINUE",
    });
  });

  it("turns throttling into Strata.Transient and passes other errors through", async () => {
    mocked.on(CompleteLifecycleActionCommand).rejects(refusal("Throttling", "Rate exceeded"));
    await expect(completeLifecycle(input, autoScaling)).rejects.toMatchObject({ name: "Strata.Transient" });

    const denied = refusal("AccessDenied", "not allowed");
    mocked.on(CompleteLifecycleActionCommand).rejects(denied);
    await expect(completeLifecycle(input, autoScaling)).rejects.toBe(denied);
  });
});
