import { readFileSync } from "node:fs";
import type { Context } from "aws-lambda";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { StrataDetailType } from "../../core/events.js";
import type { LocalDynamoDb } from "../../core/state/local-dynamodb.js";
import type { StateStore } from "../../core/state/store.js";
import { IntakeEvent } from "../../functions/event-intake/aws-events.js";
import { freshStore, startDynamoDb } from "../core/state-harness.js";
import { type LocalCloud, STATE_MACHINE_ARN, startLocalCloud } from "../local-cloud/aws-harness.js";
import { CLUSTER, liveNode, replica, staleNode, volumeWith } from "./support.js";

/**
 * The handlers as Lambda runs them: the middy wiring over the logic, their clients configured
 * from the environment only (shared/clients.ts), so the environment is set before they load.
 */
let dynamoDb: LocalDynamoDb;
let cloud: LocalCloud;
let store: StateStore;
let fenceNode: typeof import("../../functions/fence-node/handler.js").handler;
let eventIntake: typeof import("../../functions/event-intake/handler.js").handler;
let healthSweep: typeof import("../../functions/health-sweep/handler.js").handler;

beforeAll(async () => {
  dynamoDb = await startDynamoDb();
  cloud = await startLocalCloud({ clusterName: CLUSTER });
  store = await freshStore();
  Object.assign(process.env, {
    STRATA_STATE_TABLE: store.tableName,
    STRATA_CLUSTER_NAME: CLUSTER,
    STRATA_NODE_LOSS_STATE_MACHINE_ARN: STATE_MACHINE_ARN,
    POWERTOOLS_SERVICE_NAME: "strata-test",
    POWERTOOLS_METRICS_NAMESPACE: "Strata",
    POWERTOOLS_METRICS_DISABLED: "true",
    POWERTOOLS_LOG_LEVEL: "SILENT",
  });
  ({ handler: fenceNode } = await import("../../functions/fence-node/handler.js"));
  ({ handler: eventIntake } = await import("../../functions/event-intake/handler.js"));
  ({ handler: healthSweep } = await import("../../functions/health-sweep/handler.js"));
});

afterAll(async () => {
  store?.close();
  await cloud?.close();
  await dynamoDb?.close();
});

let invocations = 0;

/** What Lambda passes a handler besides the event. */
function lambdaContext(functionName: string): Context {
  invocations++;
  return {
    callbackWaitsForEmptyEventLoop: false,
    functionName,
    functionVersion: "$LATEST",
    invokedFunctionArn: `arn:aws:lambda:local:000000000000:function:${functionName}`,
    memoryLimitInMB: "256",
    awsRequestId: `request-${invocations}`,
    logGroupName: `/aws/lambda/${functionName}`,
    logStreamName: "stream",
    getRemainingTimeInMillis: () => 30_000,
    done: () => {},
    fail: () => {},
    succeed: () => {},
  };
}

describe("a workflow task's handler (fence-node)", () => {
  it("refuses an input that fails its schema, naming the field, before touching the cluster", async () => {
    const bad = fenceNode(
      { nodeId: "node-1" } as unknown as { nodeId: string; reason: string },
      lambdaContext("fence"),
    );

    await expect(bad).rejects.toMatchObject({
      name: "Strata.Refused",
      message: expect.stringMatching(/^invalid input: reason: /),
    });
  });

  it("fences the node through the state table named by its environment", async () => {
    await store.nodes.register(
      staleNode("node-lost", "local-a", { lastHeartbeat: "2020-01-01T00:00:00.000Z" }),
    );
    await store.nodes.register(liveNode("node-ok", "local-b"));
    const volume = await volumeWith(store, "on-lost", [replica("node-lost"), replica("node-ok")]);

    const result = await fenceNode({ nodeId: "node-lost", reason: "terminated" }, lambdaContext("fence"));

    expect(result).toEqual({
      nodeId: "node-lost",
      zone: "local-a",
      instanceId: null,
      volumes: [{ volume: "on-lost", action: "fenced", attachedNode: null }],
    });
    expect((await store.volumes.get(volume.id)).epoch).toBe(volume.epoch + 1);
  });
});

describe("event intake's handler", () => {
  const terminated = (id: string) =>
    IntakeEvent.parse({
      ...JSON.parse(
        readFileSync(
          new URL("../fixtures/aws-events/ec2-instance-state-change-terminated.json", import.meta.url),
          "utf8",
        ),
      ),
      id,
    });

  it("answers an event delivered again (same id) from its idempotency record, starting nothing", async () => {
    await store.nodes.register(
      liveNode("node-a1", "local-a", {
        instanceId: "i-1234567890abcdef0",
        registeredAt: "2026-11-11T20:00:00.000Z",
      }),
    );
    const starts = vi.spyOn(cloud.stepFunctions, "startExecution");

    const first = await eventIntake(terminated("delivery-1"), lambdaContext("intake"));
    const redelivered = await eventIntake(terminated("delivery-1"), lambdaContext("intake"));

    expect(first).toEqual({
      action: "started",
      workflow: "node-loss",
      execution: "node-loss-node-a1-20261111T200000000Z",
    });
    expect(redelivered).toEqual(first);
    expect(starts).toHaveBeenCalledTimes(1);
    expect(cloud.stepFunctions.executions.size).toBe(1);

    // Another event about the same loss is looked at, and finds the execution started already.
    const another = await eventIntake(terminated("delivery-2"), lambdaContext("intake"));
    expect(another).toEqual({ ...first, action: "duplicate" });
    expect(starts).toHaveBeenCalledTimes(2);
  });
});

describe("the health sweep's handler", () => {
  it("puts its verdicts on the bus the environment names, once per change", async () => {
    await store.nodes.register(
      staleNode("node-swept", "local-c", { lastHeartbeat: "2020-01-01T00:00:00.000Z" }),
    );
    const offline = () =>
      cloud.eventBus.received.filter(
        (entry) =>
          entry.detailType === StrataDetailType.nodeOffline && entry.detail["nodeId"] === "node-swept",
      );

    const first = await healthSweep({ "detail-type": "Scheduled Event" }, lambdaContext("sweep"));
    const second = await healthSweep({ "detail-type": "Scheduled Event" }, lambdaContext("sweep"));

    expect(first.offlineNodes).toContain("node-swept");
    expect(second.offlineNodes).toContain("node-swept");
    expect(second.events).toBe(0);
    expect(offline()).toHaveLength(1);
    expect(offline()[0]).toMatchObject({
      source: "strata",
      detail: { clusterName: CLUSTER, zone: "local-c" },
    });
  });
});
