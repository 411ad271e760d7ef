import { readdirSync, readFileSync } from "node:fs";
import { AutoScalingClient } from "@aws-sdk/client-auto-scaling";
import { EC2Client } from "@aws-sdk/client-ec2";
import { EKSClient } from "@aws-sdk/client-eks";
import { EventBridgeClient } from "@aws-sdk/client-eventbridge";
import { SFNClient } from "@aws-sdk/client-sfn";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { LocalDynamoDb } from "../../core/state/local-dynamodb.js";
import type { NodeRecord } from "../../core/state/records.js";
import type { StateStore } from "../../core/state/store.js";
import { IntakeEvent } from "../../functions/event-intake/aws-events.js";
import { intakeDependencies } from "../../functions/event-intake/dependencies.js";
import {
  type IntakeDependencies,
  type IntakeOutcome,
  MAX_RESTARTS,
  takeIn,
} from "../../functions/event-intake/intake.js";
import type { WorkflowStart } from "../../functions/event-intake/workflow-starts.js";
import type { AwsClients } from "../../functions/shared/clients.js";
import { functionSettings } from "../../functions/shared/settings.js";
import { freshStore, startDynamoDb } from "../core/state-harness.js";
import {
  CLIENT_CONFIG,
  type LocalCloud,
  STATE_MACHINE_ARN,
  startLocalCloud,
  ZONES,
} from "../local-cloud/aws-harness.js";
import { EXECUTION_NAME, liveNode } from "./support.js";

const FIXTURES = new URL("../fixtures/aws-events/", import.meta.url);
const fixtureNames = readdirSync(FIXTURES).filter((name) => name.endsWith(".json"));

const raw = (name: string): Record<string, unknown> =>
  JSON.parse(readFileSync(new URL(`${name}.json`, FIXTURES), "utf8"));
const fixture = (name: string, change: (event: Record<string, unknown>) => void = () => {}): IntakeEvent => {
  const event = raw(name);
  change(event);
  return IntakeEvent.parse(event);
};

/** The instance every EC2 and Auto Scaling fixture is about. */
const INSTANCE = "i-1234567890abcdef0";
const REGISTERED_AT = "2026-11-11T20:00:00.000Z";
/** The terminate lifecycle action's token in its fixture. */
const LIFECYCLE_TOKEN = "87654321-4321-4321-4321-210987654321";

/** Event intake's lookups over a few node records, its starts recorded, refusing a name used twice. */
class MemoryDependencies implements IntakeDependencies {
  readonly starts: WorkflowStart[] = [];
  constructor(
    private readonly nodes: NodeRecord[],
    private readonly zones: Record<string, string> = { "use1-az1": "us-east-1a" },
  ) {}

  async nodeByInstance(instanceId: string) {
    return this.nodes.find((node) => node.instanceId === instanceId);
  }

  async node(nodeId: string) {
    return this.nodes.find((node) => node.id === nodeId);
  }

  async zoneName(zoneId: string) {
    const name = this.zones[zoneId];
    if (name === undefined) throw new Error(`unknown zone id ${zoneId}`);
    return name;
  }

  /** Zones an az-failure marked unavailable. */
  readonly unavailable = new Set<string>();

  async zoneAvailable(zone: string) {
    return !this.unavailable.has(zone);
  }

  /** Lifecycle actions intake completed itself, by instance. */
  readonly completed: { token: string; instanceId: string }[] = [];

  /** Each execution's status, as the runner reports it: RUNNING unless a test ends it. */
  readonly statuses = new Map<string, string>();
  /** Every execution fails at once. */
  failEveryExecution = false;

  async execution(_workflow: WorkflowStart["workflow"], name: string) {
    const first = this.starts.find((start) => start.name === name);
    if (first === undefined) throw new Error(`no execution ${name}`);
    const status = this.failEveryExecution ? "FAILED" : (this.statuses.get(name) ?? "RUNNING");
    return { status, input: first.input };
  }

  async completeLifecycle(lifecycle: { lifecycleActionToken: string }, instanceId: string) {
    this.completed.push({ token: lifecycle.lifecycleActionToken, instanceId });
  }

  async start(start: WorkflowStart) {
    const duplicate = this.starts.some((earlier) => earlier.name === start.name);
    this.starts.push(start);
    // What az-failure's first step does: mark the zone.
    if (start.workflow === "az-failure" && start.input.phase === "fail")
      this.unavailable.add(start.input.zone);
    if (start.workflow === "az-failure" && start.input.phase === "restore")
      this.unavailable.delete(start.input.zone);
    return duplicate ? ("duplicate" as const) : ("started" as const);
  }
}

const strataNode = (registeredAt = REGISTERED_AT) =>
  liveNode("node-a1", "us-east-1a", { instanceId: INSTANCE, registeredAt });

const started = (outcome: IntakeOutcome) => {
  if (outcome.action === "ignored") throw new Error(`ignored: ${outcome.reason}`);
  return outcome;
};

describe("the events intake is given", () => {
  it.each(fixtureNames)("parses %s", (name) => {
    expect(IntakeEvent.safeParse(raw(name.replace(/\.json$/, ""))).error).toBeUndefined();
  });
});

describe("node loss", () => {
  const LOSS_EVENTS = [
    "ec2-instance-state-change-terminated",
    "ec2-instance-state-change-stopping",
    "ec2-spot-interruption-warning",
    "autoscaling-terminate-lifecycle-action",
    "strata-node-offline",
  ];

  it("starts node-loss under one execution name for every source reporting one life of a node", async () => {
    const deps = new MemoryDependencies([strataNode()]);

    const outcomes = [];
    for (const name of LOSS_EVENTS) outcomes.push(started(await takeIn(fixture(name), deps)));

    expect(outcomes.map((outcome) => outcome.workflow)).toEqual(LOSS_EVENTS.map(() => "node-loss"));
    expect(new Set(outcomes.map((outcome) => outcome.execution)).size).toBe(1);
    expect(outcomes.map((outcome) => outcome.action)).toEqual([
      "started",
      "duplicate",
      "duplicate",
      "duplicate",
      "duplicate",
    ]);
    expect(outcomes[0]?.execution).toMatch(EXECUTION_NAME);
    expect(deps.starts[0]?.input).toEqual({
      nodeId: "node-a1",
      zone: "us-east-1a",
      instanceId: INSTANCE,
      reason: `EC2 instance ${INSTANCE} is terminated`,
      lifecycle: null,
      detectedAt: "2026-11-11T21:31:02Z",
      graceUntil: null,
    });
  });

  it("completes a terminate lifecycle action itself when node-loss for that life was started without it", async () => {
    const deps = new MemoryDependencies([strataNode()]);
    started(await takeIn(fixture("strata-node-offline"), deps));

    const outcome = started(await takeIn(fixture("autoscaling-terminate-lifecycle-action"), deps));

    expect(outcome.action).toBe("duplicate");
    expect(outcome.detail).toContain("completed it");
    expect(deps.completed).toEqual([{ token: LIFECYCLE_TOKEN, instanceId: INSTANCE }]);
  });

  it("starts the incident again under <name>-r<n> when its execution failed, timed out or was aborted", async () => {
    const deps = new MemoryDependencies([strataNode()]);
    const first = started(await takeIn(fixture("strata-node-offline"), deps));
    deps.statuses.set(first.execution, "FAILED");

    const second = started(await takeIn(fixture("ec2-instance-state-change-terminated"), deps));
    expect(second).toMatchObject({ action: "started", execution: `${first.execution}-r1` });
    expect(second.execution).toMatch(EXECUTION_NAME);

    // Running now: a repeat is its duplicate; once it timed out too, the next name is taken.
    const repeat = started(await takeIn(fixture("ec2-instance-state-change-stopping"), deps));
    expect(repeat).toMatchObject({ action: "duplicate", execution: `${first.execution}-r1` });
    deps.statuses.set(second.execution, "TIMED_OUT");
    const third = started(await takeIn(fixture("ec2-spot-interruption-warning"), deps));
    expect(third).toMatchObject({ action: "started", execution: `${first.execution}-r2` });
  });

  it("starts nothing again for an incident whose execution succeeded", async () => {
    const deps = new MemoryDependencies([strataNode()]);
    const first = started(await takeIn(fixture("strata-node-offline"), deps));
    deps.statuses.set(first.execution, "SUCCEEDED");

    const again = started(await takeIn(fixture("ec2-instance-state-change-terminated"), deps));

    expect(again).toMatchObject({ action: "duplicate", execution: first.execution });
  });

  it("gives up restarting an incident after MAX_RESTARTS failed executions", async () => {
    const deps = new MemoryDependencies([strataNode()]);
    deps.failEveryExecution = true;
    await takeIn(fixture("strata-node-offline"), deps);
    const terminated = fixture("ec2-instance-state-change-terminated");
    for (let restart = 1; restart <= MAX_RESTARTS; restart++)
      expect(started(await takeIn(terminated, deps)).action).toBe("started");

    const last = started(await takeIn(terminated, deps));

    expect(last.action).toBe("duplicate");
    expect(new Set(deps.starts.map((start) => start.name)).size).toBe(MAX_RESTARTS + 1);
  });

  it("leaves a lifecycle action to the execution that holds it", async () => {
    const deps = new MemoryDependencies([strataNode()]);
    started(await takeIn(fixture("autoscaling-terminate-lifecycle-action"), deps));

    const again = started(
      await takeIn(
        fixture("autoscaling-terminate-lifecycle-action", (event) => {
          event["id"] = "a-redelivery-with-another-id";
        }),
        deps,
      ),
    );
    const other = started(await takeIn(fixture("ec2-instance-state-change-terminated"), deps));

    expect([again.action, other.action]).toEqual(["duplicate", "duplicate"]);
    expect(deps.completed).toEqual([]);
  });

  it("passes the lifecycle action of a terminate hook on to node-loss", async () => {
    const deps = new MemoryDependencies([strataNode()]);

    await takeIn(fixture("autoscaling-terminate-lifecycle-action"), deps);

    expect(deps.starts[0]?.input).toMatchObject({
      lifecycle: {
        autoScalingGroupName: "strata-storage-us-east-1a",
        lifecycleHookName: "strata-terminate",
        lifecycleActionToken: "87654321-4321-4321-4321-210987654321",
      },
    });
  });

  it("names the loss of a node's next life differently", async () => {
    const first = started(
      await takeIn(fixture("ec2-instance-state-change-terminated"), new MemoryDependencies([strataNode()])),
    );
    const nextLife = started(
      await takeIn(
        fixture("ec2-instance-state-change-terminated"),
        new MemoryDependencies([strataNode("2026-11-11T22:00:00.000Z")]),
      ),
    );

    expect(nextLife.execution).not.toBe(first.execution);
    expect(nextLife.execution).toMatch(EXECUTION_NAME);
  });

  it("keeps the execution name of a long node id within Step Functions' 80 characters", async () => {
    const node = liveNode(`node-${"x".repeat(70)}`, "us-east-1a", {
      instanceId: INSTANCE,
      registeredAt: REGISTERED_AT,
    });

    const outcome = started(
      await takeIn(fixture("ec2-instance-state-change-terminated"), new MemoryDependencies([node])),
    );

    expect(outcome.execution).toMatch(EXECUTION_NAME);
  });

  it("ignores an instance that is no Strata node", async () => {
    const deps = new MemoryDependencies([]);

    for (const name of LOSS_EVENTS.slice(0, 4)) {
      expect(await takeIn(fixture(name), deps)).toEqual({
        action: "ignored",
        reason: `instance ${INSTANCE} is not a Strata node`,
      });
    }
    expect(deps.starts).toEqual([]);
  });

  it("ignores an instance that is running", async () => {
    const deps = new MemoryDependencies([strataNode()]);

    expect(await takeIn(fixture("ec2-instance-state-change-running"), deps)).toEqual({
      action: "ignored",
      reason: `instance ${INSTANCE} is running: nothing is lost`,
    });
    expect(deps.starts).toEqual([]);
  });

  it("ignores a launch lifecycle action, saying a waiting node-loss finds the instance", async () => {
    const outcome = await takeIn(
      fixture("autoscaling-launch-lifecycle-action"),
      new MemoryDependencies([strataNode()]),
    );

    expect(outcome).toEqual({ action: "ignored", reason: expect.stringContaining("is launching") });
  });

  it("ignores a node that is back online", async () => {
    const outcome = await takeIn(fixture("strata-node-online"), new MemoryDependencies([strataNode()]));

    expect(outcome).toMatchObject({ action: "ignored" });
  });
});

describe("zone failure", () => {
  it("fails the zone an autoshift moves away from, by its name in this account", async () => {
    const deps = new MemoryDependencies([strataNode()]);

    const outcome = started(await takeIn(fixture("arc-autoshift-in-progress"), deps));

    expect(outcome.workflow).toBe("az-failure");
    expect(outcome.execution).toMatch(EXECUTION_NAME);
    expect(deps.starts[0]?.input).toEqual({
      zone: "us-east-1a",
      phase: "fail",
      reason: "zonal autoshift in progress",
      detectedAt: "2026-11-11T21:40:00Z",
      graceUntil: null,
    });
  });

  it("restores the zone when the autoshift completes, under another execution", async () => {
    const deps = new MemoryDependencies([strataNode()]);

    const fail = started(await takeIn(fixture("arc-autoshift-in-progress"), deps));
    const restore = started(await takeIn(fixture("arc-autoshift-completed"), deps));

    expect(deps.starts[1]?.input).toMatchObject({ zone: "us-east-1a", phase: "restore" });
    expect(restore.execution).not.toBe(fail.execution);
    expect(restore.action).toBe("started");
  });

  it("fails the zone of the Strata node an EC2 Health issue affects", async () => {
    const deps = new MemoryDependencies([strataNode()]);

    const outcome = started(await takeIn(fixture("health-ec2-issue"), deps));

    expect(outcome.workflow).toBe("az-failure");
    expect(outcome.execution).toMatch(EXECUTION_NAME);
    expect(deps.starts[0]?.input).toMatchObject({ zone: "us-east-1a", phase: "fail" });
  });

  it("restores the zone when the Health issue is closed", async () => {
    const deps = new MemoryDependencies([strataNode()]);
    const closed = fixture("health-ec2-issue", (event) => {
      const detail = event["detail"] as Record<string, unknown>;
      detail["statusCode"] = "closed";
      detail["communicationId"] = "7c1e0f9a2b3d4e5f60718293a4b5c6d7e8f90a1b-2";
    });

    const open = started(await takeIn(fixture("health-ec2-issue"), deps));
    const restore = started(await takeIn(closed, deps));

    expect(deps.starts[1]?.input).toMatchObject({ zone: "us-east-1a", phase: "restore" });
    expect(restore.execution).not.toBe(open.execution);
  });

  it("ignores a Health issue that affects no Strata node", async () => {
    const deps = new MemoryDependencies([strataNode()]);

    expect(await takeIn(fixture("health-rds-issue"), deps)).toMatchObject({ action: "ignored" });
    expect(deps.starts).toEqual([]);
  });

  it("fails and restores the zone the health sweep reports offline and online", async () => {
    const deps = new MemoryDependencies([strataNode()]);

    started(await takeIn(fixture("strata-zone-offline"), deps));
    started(await takeIn(fixture("strata-zone-online"), deps));

    expect(deps.starts.map((start) => [start.workflow, start.input])).toEqual([
      ["az-failure", expect.objectContaining({ zone: "us-east-1a", phase: "fail" })],
      ["az-failure", expect.objectContaining({ zone: "us-east-1a", phase: "restore" })],
    ]);
    for (const start of deps.starts) expect(start.name).toMatch(EXECUTION_NAME);
  });

  it("gives a cleanly stopped node a grace before node-loss fences it; a silent one none", async () => {
    const deps = new MemoryDependencies([strataNode()]);
    const clean = started(
      await takeIn(
        fixture("strata-node-offline", (event) => {
          (event["detail"] as Record<string, unknown>)["stoppedCleanly"] = true;
        }),
        deps,
      ),
    );
    const input = deps.starts[0]!.input as { graceUntil: string | null; detectedAt: string };
    expect(clean.workflow).toBe("node-loss");
    expect(Date.parse(input.graceUntil!) - Date.parse(input.detectedAt)).toBe(60_000);

    const crashed = new MemoryDependencies([strataNode()]);
    await takeIn(fixture("strata-node-offline"), crashed);
    expect((crashed.starts[0]!.input as { graceUntil: string | null }).graceUntil).toBeNull();
  });

  it("gives a zone whose offline nodes all stopped cleanly the same grace before az-failure marks it; a silent one none", async () => {
    const deps = new MemoryDependencies([strataNode()]);
    await takeIn(
      fixture("strata-zone-offline", (event) => {
        (event["detail"] as Record<string, unknown>)["stoppedCleanly"] = true;
      }),
      deps,
    );
    const input = deps.starts[0]!.input as { graceUntil: string | null; detectedAt: string };
    expect(deps.starts[0]!.workflow).toBe("az-failure");
    expect(Date.parse(input.graceUntil!) - Date.parse(input.detectedAt)).toBe(60_000);

    const failed = new MemoryDependencies([strataNode()]);
    await takeIn(fixture("strata-zone-offline"), failed);
    expect((failed.starts[0]!.input as { graceUntil: string | null }).graceUntil).toBeNull();
  });

  it("starts nothing for a sweep's Node Offline about a life of the node that has ended: the node registered again", async () => {
    const deps = new MemoryDependencies([strataNode("2026-11-11T21:00:00.000Z")]);
    const outcome = await takeIn(
      fixture("strata-node-offline", (event) => {
        (event["detail"] as Record<string, unknown>)["registeredAt"] = REGISTERED_AT;
      }),
      deps,
    );
    expect(outcome).toMatchObject({ action: "ignored", reason: expect.stringContaining("registered again") });
    expect(deps.starts).toEqual([]);
  });

  it("starts nothing for a second source reporting a zone an az-failure has taken on, or a zone that is available", async () => {
    const deps = new MemoryDependencies([strataNode()]);
    started(await takeIn(fixture("arc-autoshift-in-progress"), deps));
    const second = await takeIn(fixture("strata-zone-offline"), deps);
    expect(second).toMatchObject({ action: "ignored", reason: expect.stringContaining("taken it on") });

    started(await takeIn(fixture("strata-zone-online"), deps));
    const again = await takeIn(fixture("arc-autoshift-completed"), deps);
    expect(again).toMatchObject({ action: "ignored", reason: expect.stringContaining("available already") });
    expect(deps.starts).toHaveLength(2);
  });
});

describe("event intake's AWS dependencies", () => {
  let dynamoDb: LocalDynamoDb;
  let cloud: LocalCloud;
  let store: StateStore;
  let clients: AwsClients;

  beforeAll(async () => {
    dynamoDb = await startDynamoDb();
    cloud = await startLocalCloud({
      nodegroups: ZONES.map((zone) => ({ zone, terminateLifecycleHook: "strata-drain" })),
    });
    store = await freshStore();
    const settings = functionSettings({
      STRATA_STATE_TABLE: store.tableName,
      STRATA_CLUSTER_NAME: "strata-test",
      STRATA_NODE_LOSS_STATE_MACHINE_ARN: STATE_MACHINE_ARN,
    });
    clients = {
      settings,
      store,
      sfn: new SFNClient(CLIENT_CONFIG),
      ec2: new EC2Client(CLIENT_CONFIG),
      events: new EventBridgeClient(CLIENT_CONFIG),
      eks: new EKSClient(CLIENT_CONFIG),
      autoScaling: new AutoScalingClient(CLIENT_CONFIG),
    };
  });

  afterAll(async () => {
    for (const client of [clients?.sfn, clients?.ec2, clients?.events, clients?.eks, clients?.autoScaling])
      client?.destroy();
    store?.close();
    await cloud?.close();
    await dynamoDb?.close();
  });

  it("starts an execution once, and answers duplicate when Step Functions has one of that name", async () => {
    const deps = intakeDependencies(clients);
    const start: WorkflowStart = {
      workflow: "node-loss",
      name: "node-loss-node-a1-20261111T200000000Z",
      input: {
        nodeId: "node-a1",
        zone: "local-a",
        graceUntil: null,
        instanceId: null,
        reason: "test",
        lifecycle: null,
        detectedAt: "2026-11-11T21:31:02Z",
      },
    };

    expect(await deps.start(start)).toBe("started");
    expect(await deps.start(start)).toBe("duplicate");
    expect(cloud.stepFunctions.executions.size).toBe(1);
    const [execution] = cloud.stepFunctions.executions.values();
    expect(JSON.parse(execution?.input ?? "{}")).toEqual(start.input);
    expect(await deps.execution("node-loss", start.name)).toEqual({ status: "RUNNING", input: start.input });
  });

  it("completes a lifecycle action through Auto Scaling, so the held instance terminates", async () => {
    const instance = cloud.world.launchInstance({ nodegroup: "strata-test-local-a" });
    cloud.world.terminateInstance(instance.id);
    const [held] = cloud.world.pendingLifecycleActions();

    await intakeDependencies(clients).completeLifecycle(
      {
        autoScalingGroupName: held!.autoScalingGroupName,
        lifecycleHookName: held!.hookName,
        lifecycleActionToken: held!.token,
      },
      instance.id,
    );

    expect(cloud.world.instance(instance.id).state).toBe("terminated");
  });

  it("finds nodes by instance in the state table and zone names through EC2", async () => {
    await store.nodes.register(liveNode("node-x", "local-b", { instanceId: "i-x" }));
    const deps = intakeDependencies(clients);

    expect((await deps.nodeByInstance("i-x"))?.id).toBe("node-x");
    expect(await deps.nodeByInstance("i-unknown")).toBeUndefined();
    expect(await deps.zoneName("local-az2")).toBe("local-b");
  });
});
