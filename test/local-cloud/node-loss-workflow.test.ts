import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  DescribeExecutionCommand,
  GetExecutionHistoryCommand,
  type HistoryEvent,
  ListExecutionsCommand,
  SFNClient,
  StartExecutionCommand,
} from "@aws-sdk/client-sfn";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DriveTag } from "../../core/drive-sets.js";
import { addReplica, dropReplica, markInSync } from "../../core/replica-set.js";
import type { LocalDynamoDb } from "../../core/state/local-dynamodb.js";
import { OperationParams, type OperationRecord } from "../../core/state/records.js";
import type { StateStore } from "../../core/state/store.js";
import { LocalCloud, workflowMachine } from "../../infra/local/cloud.js";
import { nodeRecord } from "../core/fixtures.js";
import { freshStore, startDynamoDb } from "../core/state-harness.js";
import { eventually } from "../support/eventually.js";

/**
 * The node-loss workflow from state-machines/node-loss.asl.json, run by the local cloud with the
 * Lambdas from their bundles against dynalite and the local EC2, Auto Scaling and EKS endpoints,
 * with no agents: the lost node never comes back on its replacement, and the one node that could
 * repair its volume goes silent. What is checked is what the workflow leaves behind. az-failure's
 * grace for a zone whose nodes stopped cleanly runs from its own file the same way.
 */

const CLUSTER = "wf-test";
const HOOK = "strata-drain";
let dir: string;
let dynamoDb: LocalDynamoDb;
let store: StateStore;
let cloud: LocalCloud;
let sfn: SFNClient;
let heartbeats: NodeJS.Timeout | undefined;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "strata-workflow-"));
  dynamoDb = await startDynamoDb();
  store = await freshStore();
  Object.assign(process.env, {
    STRATA_HEARTBEAT_TIMEOUT_MS: "3000",
    STRATA_REPLACEMENT_WAIT_MS: "20000",
    // The lost node's agent never starts on the replacement: give up on it soon.
    STRATA_NODE_RETURN_WAIT_MS: "1500",
    POWERTOOLS_LOG_LEVEL: "SILENT",
    STRATA_LAMBDA_LOG_LEVEL: "SILENT",
  });
  cloud = await LocalCloud.start({
    dir,
    clusterName: CLUSTER,
    stateTable: store.tableName,
    zones: ["local-a", "local-b"],
    terminateLifecycleHook: HOOK,
    // No sweep: the workflow here starts from EC2's and Auto Scaling's own events.
    // Retries long enough (6 × 300 ms) for a test to change the world while a task retries.
    timing: { healthSweepMs: 3_600_000, waitCapMs: 100, retryCapMs: 300 },
    report: () => {},
    onDriveChange: () => {},
  });
  sfn = new SFNClient({ endpoint: cloud.environment.AWS_ENDPOINT_URL_SFN });
});

afterAll(async () => {
  clearInterval(heartbeats);
  sfn?.destroy();
  await cloud?.close();
  store?.close();
  await dynamoDb?.close();
  await rm(dir, { recursive: true, force: true });
});

async function history(executionArn: string): Promise<HistoryEvent[]> {
  const events: HistoryEvent[] = [];
  let nextToken: string | undefined;
  do {
    const page = await sfn.send(new GetExecutionHistoryCommand({ executionArn, nextToken }));
    events.push(...(page.events ?? []));
    nextToken = page.nextToken;
  } while (nextToken !== undefined);
  return events;
}

const enteredStates = (events: HistoryEvent[]) =>
  events.flatMap((event) =>
    event.stateEnteredEventDetails?.name ? [event.stateEnteredEventDetails.name] : [],
  );

/** Registers a node the way its agent would, on `instanceId`, with a drive of its drive set there. */
async function nodeOnInstance(nodeId: string, zone: string): Promise<string> {
  const instance = cloud.ec2.launchInstance({ nodegroup: `${CLUSTER}-${zone}` });
  cloud.ec2.createVolume({
    zone,
    sizeBytes: 1024 ** 3,
    tags: { [DriveTag.cluster]: CLUSTER, [DriveTag.driveSet]: nodeId },
    attachTo: { instanceId: instance.id },
  });
  const now = new Date().toISOString();
  await store.nodes.register(
    nodeRecord(nodeId, { zone, instanceId: instance.id, lastHeartbeat: now, registeredAt: now }),
  );
  return instance.id;
}

/** The nodes' agents heartbeat, until the interval is cleared. */
const beating = (...nodeIds: string[]) =>
  setInterval(() => {
    for (const nodeId of nodeIds) void store.nodes.heartbeat(nodeId, { freeBytes: 100 * 1024 ** 3 });
  }, 500);

/** An RF2 volume with an in-sync replica on each of two nodes. */
const volumeOn = (name: string, nodes: readonly [string, string]) =>
  store.volumes.create({
    name,
    sizeBytes: 64 * 1024 ** 2,
    replicationFactor: 2,
    replicas: nodes.map((node) => ({ replicaId: `r-${node}`, node, state: "in-sync" as const })),
  });

/** Waits for the execution to end. */
const ended = (executionArn: string) =>
  eventually(
    async () => (await sfn.send(new DescribeExecutionCommand({ executionArn }))).status !== "RUNNING",
    "the execution to end",
    60_000,
  );

async function executionOf(machine: "node-loss" | "az-failure", nameStart: string) {
  const stateMachineArn = cloud.stepFunctions.stateMachineArn(workflowMachine(machine));
  const { executions } = await sfn.send(new ListExecutionsCommand({ stateMachineArn }));
  return (executions ?? []).filter((execution) => execution.name!.startsWith(nameStart));
}

describe("node-loss, run from its ASL file by the local cloud", () => {
  it("moves the drives to the replacement, completes the lifecycle action, then re-replicates when the node does not come back; one execution however many events", async () => {
    const lost = cloud.ec2.launchInstance({ nodegroup: `${CLUSTER}-local-a` });
    cloud.ec2.createVolume({
      zone: "local-a",
      sizeBytes: 1024 ** 3,
      tags: { [DriveTag.cluster]: CLUSTER, [DriveTag.driveSet]: "node-x" },
      attachTo: { instanceId: lost.id },
    });
    const now = () => new Date().toISOString();
    await store.nodes.register(
      nodeRecord("node-x", {
        zone: "local-a",
        instanceId: lost.id,
        lastHeartbeat: now(),
        registeredAt: now(),
      }),
    );
    await store.nodes.register(
      nodeRecord("node-y", { zone: "local-b", lastHeartbeat: now(), registeredAt: now() }),
    );
    // node-y's agent heartbeats, until the test silences it below.
    heartbeats = beating("node-y");
    const volume = await volumeOn("orders", ["node-x", "node-y"]);

    // Auto Scaling terminates the instance: its hook holds it in Terminating:Wait and says so on the
    // bus; the node group launches a replacement in the same zone.
    cloud.ec2.terminateInstance(lost.id);
    const replacement = cloud.ec2.launchInstance({ nodegroup: `${CLUSTER}-local-a` });
    const stateMachineArn = cloud.stepFunctions.stateMachineArn(workflowMachine("node-loss"));

    // The repair starts on node-y; node-y then goes silent, so the repair is stalled and fails.
    await eventually(
      async () => (await store.operations.list()).some((op) => op.kind === "repair"),
      "a repair to start",
    );
    clearInterval(heartbeats);
    await eventually(
      async () => {
        const { executions } = await sfn.send(new ListExecutionsCommand({ stateMachineArn }));
        return executions?.[0]?.status !== undefined && executions[0].status !== "RUNNING";
      },
      "node-loss to end",
      60_000,
    );

    const { executions } = await sfn.send(new ListExecutionsCommand({ stateMachineArn }));
    expect(executions).toHaveLength(1);
    const execution = await sfn.send(
      new DescribeExecutionCommand({ executionArn: executions![0]!.executionArn }),
    );
    expect(execution.status).toBe("FAILED");
    expect(execution.error).toBe("Strata.VolumesNotRestored");
    const input = JSON.parse(execution.input!) as { lifecycle: { lifecycleHookName: string } | null };
    expect(input.lifecycle?.lifecycleHookName).toBe(HOOK);

    const events = await history(executions![0]!.executionArn!);
    const states = enteredStates(events);
    for (const state of [
      "FenceNode",
      "FindReplacement",
      "MoveDrives",
      "CompleteLifecycle",
      "CheckNode",
      "PlanRepairs",
      "RunOperations",
      "Report",
    ])
      expect(states).toContain(state);
    // The first MoveDrives found the drive still detaching: a transient error, retried.
    const moveFailures = events.filter(
      (event) =>
        event.type === "LambdaFunctionFailed" &&
        event.lambdaFunctionFailedEventDetails?.error === "Strata.Transient",
    );
    expect(moveFailures.length).toBeGreaterThan(0);
    expect(states.indexOf("PlanResyncs")).toBe(-1);

    // What the cluster holds now is consistent and says what happened.
    const drive = cloud.ec2.volumes().find((candidate) => candidate.tags[DriveTag.driveSet] === "node-x")!;
    expect(drive.attachment?.instanceId).toBe(replacement.id);
    expect(cloud.ec2.instance(lost.id).state).toBe("terminated");
    const fenced = await store.volumes.get(volume.id);
    expect(fenced.replicas.find((replica) => replica.node === "node-x")?.state).toBe("failed");
    expect(fenced.epoch).toBeGreaterThan(volume.epoch);
    const repair = (await store.operations.list()).find((op) => op.kind === "repair")!;
    expect(repair.state).toBe("failed");
    expect(repair.error).toContain("stalled");
  });

  it("retries a task that keeps failing with a transient error, then takes its Catch path and leaves the cluster consistent", async () => {
    const lost = await nodeOnInstance("node-z", "local-b");
    const now = () => new Date().toISOString();
    await store.nodes.register(
      nodeRecord("node-w", { zone: "local-a", lastHeartbeat: now(), registeredAt: now() }),
    );
    const beats = beating("node-w");
    try {
      const volume = await volumeOn("ledger", ["node-z", "node-w"]);
      cloud.ec2.terminateInstance(lost);
      const replacement = cloud.ec2.launchInstance({ nodegroup: `${CLUSTER}-local-b` });

      // Once the drives are being moved, the replacement stops: every retry finds it not running.
      let execution: Awaited<ReturnType<typeof executionOf>>[number] | undefined;
      await eventually(async () => {
        [execution] = await executionOf("node-loss", "node-loss-node-z-");
        if (execution === undefined) return false;
        return enteredStates(await history(execution.executionArn!)).includes("MoveDrives");
      }, "MoveDrives to start");
      cloud.ec2.stopInstance(replacement.id);

      await eventually(
        async () => (await store.operations.list()).some((op) => op.volumeName === "ledger"),
        "a repair of ledger",
      );
      clearInterval(beats);
      await ended(execution!.executionArn!);

      const events = await history(execution!.executionArn!);
      const moveFailures = events.filter(
        (event) =>
          event.type === "LambdaFunctionFailed" &&
          event.lambdaFunctionFailedEventDetails?.error === "Strata.Transient",
      );
      // The first attempt and its six retries.
      expect(moveFailures.length).toBeGreaterThanOrEqual(7);
      const states = enteredStates(events);
      expect(states.slice(states.indexOf("MoveDrives"))).toEqual(
        expect.arrayContaining([
          "ReleaseLifecycle?",
          "ReleaseLifecycle",
          "PlanRepairs",
          "RunOperations",
          "Report",
        ]),
      );
      expect(states).not.toContain("CheckNode");

      // Consistent: the node fenced, its lifecycle action completed (the instance could go), the
      // drive on no instance, nothing half-attached, and the repair's failure recorded.
      expect(
        (await store.volumes.get(volume.id)).replicas.find((replica) => replica.node === "node-z")?.state,
      ).toBe("failed");
      expect((await store.nodes.get("node-z")).state).toBe("down");
      expect(cloud.ec2.instance(lost).state).toBe("terminated");
      const drive = cloud.ec2.volumes().find((candidate) => candidate.tags[DriveTag.driveSet] === "node-z")!;
      expect(drive.attachment).toBeUndefined();
      const described = await sfn.send(
        new DescribeExecutionCommand({ executionArn: execution!.executionArn }),
      );
      expect(described.error).toBe("Strata.VolumesNotRestored");
    } finally {
      clearInterval(beats);
    }
  });
});

describe("node-loss for two nodes lost in one zone with one replacement", () => {
  it("moves one node's drives there, and re-replicates the other's volumes without touching the replacement", async () => {
    const instances = [await nodeOnInstance("twin-1", "local-a"), await nodeOnInstance("twin-2", "local-a")];
    const now = () => new Date().toISOString();
    await store.nodes.register(
      nodeRecord("twin-h", { zone: "local-b", lastHeartbeat: now(), registeredAt: now() }),
    );
    const beats = beating("twin-h");
    try {
      await volumeOn("twin-one", ["twin-1", "twin-h"]);
      await volumeOn("twin-two", ["twin-2", "twin-h"]);
      for (const instance of instances) cloud.ec2.terminateInstance(instance);
      const replacement = cloud.ec2.launchInstance({ nodegroup: `${CLUSTER}-local-a` });

      // Both end up repairing on twin-h (the one whose drives moved never serves again: no agents
      // here); twin-h then goes silent, so the repairs stall and fail, and the executions end.
      await eventually(
        async () => {
          const repaired = (await store.operations.list()).map((operation) => operation.volumeName);
          return repaired.includes("twin-one") && repaired.includes("twin-two");
        },
        "repairs of both volumes",
        60_000,
      );
      clearInterval(beats);
      const executions = [
        ...(await executionOf("node-loss", "node-loss-twin-1-")),
        ...(await executionOf("node-loss", "node-loss-twin-2-")),
      ];
      expect(executions).toHaveLength(2);
      for (const execution of executions) await ended(execution.executionArn!);

      // One drive set on the replacement, and the claim says whose.
      const driveOf = (nodeId: string) =>
        cloud.ec2.volumes().find((drive) => drive.tags[DriveTag.driveSet] === nodeId)!;
      const onReplacement = ["twin-1", "twin-2"].filter(
        (nodeId) => driveOf(nodeId).attachment?.instanceId === replacement.id,
      );
      expect(onReplacement).toHaveLength(1);
      const [winner] = onReplacement;
      expect(await store.leases.holder(`replacement/${replacement.id}`)).toBe(winner);

      // The other never got there: refused at MoveDrives and taken back, or never offered it.
      const loser = executions.find((execution) => !execution.name!.startsWith(`node-loss-${winner}-`))!;
      const states = enteredStates(await history(loser.executionArn!));
      expect(states).toContain("PlanRepairs");
      expect(states).not.toContain("CheckNode");
      if (states.includes("MoveDrives")) {
        expect(states.slice(states.indexOf("MoveDrives"))).toEqual(
          expect.arrayContaining(["ReleaseReplacement", "ReleaseLifecycle?", "PlanRepairs"]),
        );
      }
    } finally {
      clearInterval(beats);
    }
  });
});

/**
 * What the volume service does for a move-replica operation, on the store only (these tests run no
 * agents): the new replica added and in sync, then the old one dropped.
 */
async function runMove(operation: OperationRecord): Promise<void> {
  const { replicaId, targetNode } = OperationParams["move-replica"].parse(operation.params);
  await store.operations.claim(operation.id, operation.node, "test-agent");
  const added = `${replicaId}-moved`;
  for (const change of [
    addReplica({ replicaId: added, nodeId: targetNode }, { keepFactor: true }),
    markInSync(added),
    dropReplica(replicaId),
  ]) {
    const volume = await store.volumes.get(operation.volumeId);
    await store.volumes.updateIfEpoch(volume.id, volume.epoch, change(volume));
  }
  await store.operations.finish(operation.id, "test-agent", { state: "succeeded" });
}

describe("node-loss on a scale-in", () => {
  it("moves the node's replicas off while it serves, then fences it and completes the lifecycle action, waiting for no replacement", async () => {
    const leaving = await nodeOnInstance("drain-x", "local-a");
    const now = () => new Date().toISOString();
    await store.nodes.register(
      nodeRecord("drain-y", { zone: "local-b", lastHeartbeat: now(), registeredAt: now() }),
    );
    await store.nodes.register(
      nodeRecord("drain-z", { zone: "local-a", lastHeartbeat: now(), registeredAt: now() }),
    );
    const beats = beating("drain-x", "drain-y", "drain-z");
    try {
      const volume = await volumeOn("events", ["drain-x", "drain-y"]);

      // The node group shrinks by one: Auto Scaling terminates drain-x's instance through its hook.
      cloud.ec2.scaleIn(leaving);
      let move: OperationRecord | undefined;
      await eventually(async () => {
        move = (await store.operations.list()).find(
          (operation) => operation.kind === "move-replica" && operation.volumeName === "events",
        );
        return move !== undefined;
      }, "a move of events' replica off drain-x");
      // Nothing is fenced while the move runs: the node still serves its replica.
      expect((await store.volumes.get(volume.id)).replicas.map((replica) => replica.state)).toEqual([
        "in-sync",
        "in-sync",
      ]);
      expect(cloud.ec2.instance(leaving).lifecycleState).toBe("Terminating:Wait");
      await runMove(move!);

      const [execution] = await executionOf("node-loss", "node-loss-drain-x-");
      await ended(execution!.executionArn!);
      const described = await sfn.send(
        new DescribeExecutionCommand({ executionArn: execution!.executionArn }),
      );
      expect(described.status).toBe("SUCCEEDED");
      const states = enteredStates(await history(execution!.executionArn!));
      expect(states).toEqual(
        expect.arrayContaining([
          "ReplaceOrScaleIn",
          "PlanDrain",
          "RunOperations",
          "FenceDrainedNode",
          "CompleteDrain",
        ]),
      );
      expect(states.indexOf("RunOperations")).toBeLessThan(states.indexOf("FenceDrainedNode"));
      expect(states).not.toContain("WaitForReplacement");
      expect(states).not.toContain("FenceNode");

      const after = await store.volumes.get(volume.id);
      expect(after.replicationFactor).toBe(2);
      expect(after.replicas.map((replica) => replica.node)).not.toContain("drain-x");
      expect(after.replicas.every((replica) => replica.state === "in-sync")).toBe(true);
      expect((await store.nodes.get("drain-x")).state).toBe("down");
      expect(cloud.ec2.instance(leaving).state).toBe("terminated");
    } finally {
      clearInterval(beats);
    }
  });
});

describe("az-failure, run from its ASL file by the local cloud", () => {
  /** Two nodes of local-b whose agents stopped cleanly, and az-failure started for the zone. */
  async function zoneStoppedCleanly(name: string, graceMs: number) {
    const now = new Date();
    for (const nodeId of [`${name}-b1`, `${name}-b2`]) {
      await store.nodes.register(
        nodeRecord(nodeId, {
          zone: "local-b",
          state: "down",
          lastHeartbeat: now.toISOString(),
          registeredAt: now.toISOString(),
        }),
      );
    }
    await sfn.send(
      new StartExecutionCommand({
        stateMachineArn: cloud.stepFunctions.stateMachineArn(workflowMachine("az-failure")),
        name,
        input: JSON.stringify({
          zone: "local-b",
          phase: "fail",
          reason: "the health sweep: 2 of 2 nodes offline",
          detectedAt: now.toISOString(),
          graceUntil: new Date(now.getTime() + graceMs).toISOString(),
        }),
      }),
    );
    const [execution] = await executionOf("az-failure", name);
    return execution!.executionArn!;
  }

  it("waits out a cleanly stopped zone's grace, and ends without marking or copying anything when its nodes serve again", async () => {
    const executionArn = await zoneStoppedCleanly("az-restart", 60_000);
    await eventually(
      async () => enteredStates(await history(executionArn)).includes("CheckRestart"),
      "the grace loop to look at the zone",
    );
    // The agents restarted: both register again, up.
    const now = new Date().toISOString();
    for (const nodeId of ["az-restart-b1", "az-restart-b2"])
      await store.nodes.register(
        nodeRecord(nodeId, { zone: "local-b", lastHeartbeat: now, registeredAt: now }),
      );
    await ended(executionArn);

    expect((await sfn.send(new DescribeExecutionCommand({ executionArn }))).status).toBe("SUCCEEDED");
    const states = enteredStates(await history(executionArn));
    expect(states).toContain("ZoneServesAgain");
    expect(states).not.toContain("MarkUnavailable");
    expect(await store.zones.unavailable()).toEqual(new Set());
  });

  it("marks the zone unavailable once the grace has passed and its nodes are still down", async () => {
    const executionArn = await zoneStoppedCleanly("az-stopped", 500);
    await ended(executionArn);

    const states = enteredStates(await history(executionArn));
    expect(states.indexOf("CheckRestart")).toBeLessThan(states.indexOf("MarkUnavailable"));
    expect(states).not.toContain("ZoneServesAgain");
    expect(await store.zones.unavailable()).toEqual(new Set(["local-b"]));
  });
});
