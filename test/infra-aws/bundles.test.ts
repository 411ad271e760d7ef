import { execFile } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DriveTag } from "../../core/drive-sets.js";
import { StrataDetailType } from "../../core/events.js";
import type { LocalDynamoDb } from "../../core/state/local-dynamodb.js";
import type { StateStore } from "../../core/state/store.js";
import { PROJECT_ROOT } from "../../infra/aws/app.js";
import { type LocalS3, startLocalS3 } from "../../infra/local/s3/local-s3.js";
import { strataFunctions } from "../../infra/workflows.js";
import { freshStore, startDynamoDb } from "../core/state-harness.js";
import { liveNode, replica, staleNode, volumeWith } from "../functions/support.js";
import { type LocalCloud, STATE_MACHINE_ARN, startLocalCloud } from "../local-cloud/aws-harness.js";

/**
 * The Lambdas as `npx cdk synth` bundles them (cdk.json, the local esbuild, no AWS account), each
 * loaded in a process of its own, with the environment the template gives it (its references
 * pointed at the local cloud), and handed an event.
 */
const run = promisify(execFile);
let outdir: string;
let template: { Resources: Record<string, { Type: string; Properties: Record<string, unknown> }> };
let dynamoDb: LocalDynamoDb;
let cloud: LocalCloud;
let store: StateStore;
let s3: LocalS3;

beforeAll(async () => {
  outdir = mkdtempSync(join(tmpdir(), "strata-cdk-"));
  await run("npx", ["cdk", "synth", "--quiet", "--output", outdir], {
    cwd: PROJECT_ROOT,
    timeout: 600_000,
    maxBuffer: 16 * 1024 * 1024,
  });
  template = JSON.parse(readFileSync(join(outdir, "strata-strata.template.json"), "utf8"));
  dynamoDb = await startDynamoDb();
  cloud = await startLocalCloud({ clusterName: "strata" });
  store = await freshStore();
  // The cloudsnap bucket the template names, on s3rver: the catalogs the cloudsnap tasks read.
  s3 = await startLocalS3({ dir: join(outdir, "s3"), bucket: "strata-cloudsnaps" });
  process.env.AWS_ENDPOINT_URL_S3 = s3.endpoint;
}, 900_000);

afterAll(async () => {
  delete process.env.AWS_ENDPOINT_URL_S3;
  await s3?.close();
  store?.close();
  await cloud?.close();
  await dynamoDb?.close();
  if (outdir !== undefined) rmSync(outdir, { recursive: true, force: true });
});

interface Deployed {
  /** The bundle the function's asset holds. */
  file: string;
  environment: Record<string, string>;
}

/**
 * `name`'s bundle and its environment, each reference to a stack resource replaced by its local
 * counterpart: the table by the test's, the bus by the local cloud's (the default one), a state
 * machine by the local Step Functions' one.
 */
function deployed(name: string): Deployed {
  const fn = Object.values(template.Resources).find(
    (resource) =>
      resource.Type === "AWS::Lambda::Function" && resource.Properties["FunctionName"] === `strata-${name}`,
  );
  if (fn === undefined) throw new Error(`the template has no function strata-${name}`);
  const key = (fn.Properties["Code"] as { S3Key: string }).S3Key.replace(/\.zip$/, "");
  const variables = (fn.Properties["Environment"] as { Variables: Record<string, unknown> }).Variables;
  const local = (value: unknown): string => {
    if (typeof value === "string") return value;
    const ref = (value as { Ref?: string }).Ref ?? "";
    const type = template.Resources[ref]?.Type;
    if (type === "AWS::DynamoDB::Table") return store.tableName;
    if (type === "AWS::Events::EventBus") return "default";
    if (type === "AWS::StepFunctions::StateMachine") return STATE_MACHINE_ARN;
    if (type === "AWS::S3::Bucket") return "strata-cloudsnaps";
    throw new Error(`${name}'s environment refers to ${JSON.stringify(value)}, which this test does not map`);
  };
  return {
    file: join(outdir, `asset.${key}`, "index.mjs"),
    environment: Object.fromEntries(
      Object.entries(variables).map(([variable, value]) => [variable, local(value)]),
    ),
  };
}

type Outcome = { result: unknown } | { error: { name: string; message: string } };

interface Invocation {
  outcome: Outcome;
  /** The CloudWatch metrics it published (Embedded Metric Format lines on stdout, as in Lambda). */
  metrics: Record<string, unknown>[];
}

/**
 * Loads `name`'s bundle in a new Node.js process, as Lambda's runtime does, and invokes its handler
 * once. The invocation's remaining time is short, so the health sweep sweeps once.
 */
async function invocation(name: string, event: unknown): Promise<Invocation> {
  const { file, environment } = deployed(name);
  const program = `
    const { handler } = await import(${JSON.stringify(pathToFileURL(file).href)});
    const context = {
      functionName: "strata-${name}", functionVersion: "$LATEST", awsRequestId: "request-1",
      invokedFunctionArn: "arn:aws:lambda:local:000000000000:function:strata-${name}",
      memoryLimitInMB: "512", logGroupName: "/aws/lambda/strata-${name}", logStreamName: "stream",
      callbackWaitsForEmptyEventLoop: false, getRemainingTimeInMillis: () => 1000,
    };
    try {
      const result = await handler(${JSON.stringify(event)}, context);
      process.stdout.write("\\n" + JSON.stringify({ result }));
    } catch (error) {
      process.stdout.write("\\n" + JSON.stringify({ error: { name: error.name, message: error.message } }));
    }`;
  const { stdout } = await run(process.execPath, ["--input-type=module", "-e", program], {
    env: {
      ...process.env,
      ...environment,
      // The logs would only fill the test's output; metrics go to stdout as in Lambda (EMF).
      POWERTOOLS_LOG_LEVEL: "SILENT",
    },
    timeout: 60_000,
  });
  const lines = stdout
    .split("\n")
    .filter((line) => line.startsWith("{"))
    .map((line) => JSON.parse(line) as Record<string, unknown>);
  return { outcome: lines.at(-1) as Outcome, metrics: lines.filter((line) => "_aws" in line) };
}

async function invoke(name: string, event: unknown): Promise<Outcome> {
  return (await invocation(name, event)).outcome;
}

describe("the bundles `npx cdk synth` deploys", () => {
  it("are one ES module per function of the catalog, with its source map", () => {
    for (const definition of strataFunctions) {
      const { file } = deployed(definition.name);
      expect(existsSync(file), definition.name).toBe(true);
      expect(existsSync(`${file}.map`), definition.name).toBe(true);
    }
  });

  it.each(strataFunctions.map((fn) => fn.name).filter((name) => name !== "health-sweep"))(
    "%s loads and refuses an input that fails its schema, naming what is wrong",
    async (name) => {
      const outcome = await invoke(name, { unexpected: true });

      expect(outcome).toEqual({
        error: { name: "Strata.Refused", message: expect.stringMatching(/^invalid input: \S+/) },
      });
    },
  );

  it("event intake starts node-loss for a terminated instance of a registered node", async () => {
    await store.nodes.register(
      liveNode("node-b1", "local-b", { instanceId: "i-0b1", registeredAt: "2026-12-01T08:00:00.000Z" }),
    );
    const fixture = JSON.parse(
      readFileSync(
        join(PROJECT_ROOT, "test/fixtures/aws-events/ec2-instance-state-change-terminated.json"),
        "utf8",
      ),
    );
    const event = { ...fixture, id: "bundle-1", detail: { ...fixture.detail, "instance-id": "i-0b1" } };

    const outcome = await invoke("event-intake", event);

    expect(outcome).toEqual({
      result: {
        action: "started",
        workflow: "node-loss",
        execution: "node-loss-node-b1-20261201T080000000Z",
      },
    });
    expect([...cloud.stepFunctions.executions.values()].map((execution) => execution.name)).toContain(
      "node-loss-node-b1-20261201T080000000Z",
    );
  });

  it("the health sweep finds a stale node and puts its Node Offline event on the bus", async () => {
    await store.nodes.register(
      staleNode("node-c1", "local-c", { lastHeartbeat: "2020-01-01T00:00:00.000Z" }),
    );

    const { outcome, metrics } = await invocation("health-sweep", { "detail-type": "Scheduled Event" });

    expect(outcome).toMatchObject({
      result: { sweeps: 1, offlineNodes: expect.arrayContaining(["node-c1"]) },
    });
    expect(
      cloud.eventBus.received.filter(
        (entry) => entry.detailType === StrataDetailType.nodeOffline && entry.detail["nodeId"] === "node-c1",
      ),
    ).toHaveLength(1);
    // What the stale-heartbeat alarm watches (infra/aws/alarms.ts): the nodes offline at the sweep.
    expect(metrics).toContainEqual(
      expect.objectContaining({ service: "health-sweep", NodesOffline: expect.any(Number) }),
    );
    const [published] = metrics.filter((line) => "NodesOffline" in line);
    expect(published!["NodesOffline"]).toBeGreaterThanOrEqual(1);
  });

  it("the workflows' state-table tasks handle the inputs their state machines give them", async () => {
    // node-d2 went silent an hour ago; vol-d has a replica there and one on the live node-d1.
    const now = new Date();
    await store.nodes.register(liveNode("node-d1", "local-d", { lastHeartbeat: now.toISOString() }));
    await store.nodes.register(
      staleNode("node-d2", "local-e", { lastHeartbeat: new Date(now.getTime() - 3_600_000).toISOString() }),
    );
    await volumeWith(store, "vol-d", [replica("node-d1"), replica("node-d2")]);
    const execution = "node-loss-node-d2-bundle";

    const check = await invoke("check-node", {
      purpose: "still-lost",
      nodeId: "node-d2",
      graceUntil: new Date(now.getTime() - 60_000).toISOString(),
    });
    expect(check).toMatchObject({ result: { status: "gave-up" } });

    const marked = await invoke("mark-zone", { zone: "local-e", available: false, reason: "bundle test" });
    expect(marked).toMatchObject({ result: { zone: "local-e", offlineNodes: ["node-d2"] } });
    await invoke("mark-zone", { zone: "local-e", available: true, reason: "bundle test" });

    const fenced = await invoke("fence-node", { nodeId: "node-d2", reason: "lost in the bundle test" });
    expect(JSON.stringify(fenced)).toContain("vol-d");
    expect((await store.volumes.getByName("vol-d")).replicas.map((r) => [r.node, r.state])).toEqual([
      ["node-d1", "in-sync"],
      ["node-d2", "failed"],
    ]);

    const planned = await invoke("plan-operations", { purpose: "repair", execution, lostNodes: ["node-d2"] });
    expect(JSON.stringify(planned)).toContain("vol-d");

    const started = await invoke("start-operation", {
      kind: "repair",
      volume: "vol-d",
      node: "node-d1",
      requestToken: `${execution}:repair:vol-d`,
      params: {},
    });
    expect(started).toMatchObject({ result: { operationId: expect.any(String), state: "pending" } });
    const { operationId } = (started as { result: { operationId: string } }).result;
    expect(await invoke("poll-operation", { operationId })).toMatchObject({
      result: { state: "pending" },
    });

    expect(await invoke("find-due-cloudsnaps", { at: now.toISOString() })).toMatchObject({
      result: expect.any(Object),
    });
  });

  it("the drive tasks move a lost node's drives through the local EC2, and give them back", async () => {
    const lost = cloud.world.launchInstance({ nodegroup: "strata-local-a" });
    const drive = cloud.world.createVolume({
      zone: lost.zone,
      sizeBytes: 100 * 1024 ** 3,
      tags: { [DriveTag.cluster]: "strata", [DriveTag.driveSet]: "node-f1" },
      attachTo: { instanceId: lost.id },
    });
    cloud.world.terminateInstance(lost.id);
    const fresh = cloud.world.launchInstance({ nodegroup: "strata-local-a" });

    const found = await invoke("find-replacement", {
      nodeId: "node-f1",
      zone: lost.zone,
      instanceId: lost.id,
      lifecycle: null,
      detectedAt: new Date().toISOString(),
    });
    expect(JSON.stringify(found)).toContain(fresh.id);

    // A drive still detaching is Strata.Transient: the state machine retries it, as this loop does.
    let moved: Outcome | undefined;
    for (let attempt = 0; attempt < 10 && !(moved !== undefined && "result" in moved); attempt++) {
      moved = await invoke("move-drives", { nodeId: "node-f1", zone: lost.zone, toInstanceId: fresh.id });
      if ("error" in moved) expect(moved.error.name).toBe("Strata.Transient");
    }
    expect(moved).toMatchObject({ result: { volumeIds: [drive.id] } });

    const released = await invoke("release-replacement", { nodeId: "node-f1", toInstanceId: fresh.id });
    expect(released).toMatchObject({ result: { detached: [drive.id] } });

    // An action no longer pending (completed, or timed out) is done, not an error.
    expect(
      await invoke("complete-lifecycle", {
        lifecycle: {
          autoScalingGroupName: "strata-local-a",
          lifecycleHookName: "strata-drain",
          lifecycleActionToken: "00000000-0000-4000-8000-000000000000",
        },
        instanceId: lost.id,
      }),
    ).toMatchObject({ result: expect.anything() });
  });

  it("the cloudsnap tasks read the bucket and account for a restore", async () => {
    const volume = await store.volumes.create({ name: "vol-g", sizeBytes: 4096, replicationFactor: 1 });
    await store.policies.create({ name: "keep-3", schedules: { daily: { time: "01:00", retain: 3 } } });
    const retention = await invoke("apply-retention", {
      volume: "vol-g",
      volumeId: volume.id,
      node: "node-d1",
      policy: "keep-3",
      cloudsnap: `${volume.id}-20261203T010000000Z`,
      at: new Date().toISOString(),
    });
    expect(retention).toEqual({ result: { expired: [], operationId: null } });

    const unlisted = `${volume.id}-20261203T010000000Z`;
    const checked = await invoke("check-restore", {
      execution: "restore-bundle",
      request: { cloudsnap: unlisted, volume: "vol-g-copy" },
    });
    expect(checked).toMatchObject({
      error: { name: "Strata.Refused", message: expect.stringContaining(unlisted) },
    });

    const reported = await invoke("report-cloudsnap", {
      workflow: "restore",
      outcome: "failed",
      execution: "restore-bundle",
      subject: {
        cloudsnap: unlisted,
        volume: "vol-g-copy",
        error: { Error: "Strata.Refused", Cause: JSON.stringify({ errorMessage: "not in the catalog" }) },
      },
    });
    expect(reported).toMatchObject({ result: expect.anything() });
    expect(
      cloud.eventBus.received.filter(
        (entry) =>
          entry.detailType === StrataDetailType.restoreFailed && entry.detail["volume"] === "vol-g-copy",
      ),
    ).toHaveLength(1);
  });

  it("report-recovery puts a recovery's events on the bus", async () => {
    const outcome = await invoke("report-recovery", {
      workflow: "node-loss",
      execution: "node-loss-node-x",
      subject: "node-x",
      results: [{ volume: "vol-1", outcome: "restored", bytesCopied: 4096 }],
    });

    expect(outcome).toMatchObject({ result: expect.any(Object) });
    expect(
      cloud.eventBus.received.filter(
        (entry) =>
          entry.detailType === StrataDetailType.recoveryFinished &&
          entry.detail["execution"] === "node-loss-node-x",
      ),
    ).toHaveLength(1);
  });
});
