import { readFile, rm } from "node:fs/promises";
import { join } from "node:path";
import { CreateKeyCommand, KMSClient } from "@aws-sdk/client-kms";
import {
  DescribeExecutionCommand,
  type DescribeExecutionOutput,
  GetExecutionHistoryCommand,
  SFNClient,
  StartExecutionCommand,
} from "@aws-sdk/client-sfn";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { OperationRunner } from "../../agent/operations/runner.js";
import { CloudsnapBucket } from "../../core/cloud/cloudsnap-bucket.js";
import { emptyCatalog, readCatalog, writeCatalog } from "../../core/cloud/cloudsnap-catalog.js";
import { cloudsnapS3Client } from "../../core/cloud/s3-client.js";
import type { Cloudsnap } from "../../core/cloudsnaps.js";
import { scheduledSnapshotName } from "../../core/schedule-policies.js";
import type { LocalDynamoDb } from "../../core/state/local-dynamodb.js";
import { OperationParams } from "../../core/state/records.js";
import type { StateStore } from "../../core/state/store.js";
import { EVENTS_FILE, KMS_FILE, LocalCloud, workflowMachine } from "../../infra/local/cloud.js";
import { type CloudsnapStorage, startCloudsnapStorage } from "../../infra/local/cloudsnap-storage.js";
import { capturingLogger } from "../api/harness.js";
import { prepareClusterDir } from "../cli/strata-process.js";
import { nodeRecord } from "../core/fixtures.js";
import { freshStore, startDynamoDb } from "../core/state-harness.js";
import { catalogEntry } from "../functions/support.js";
import { eventually } from "../support/eventually.js";
import { type InProcessAgent, startInProcessAgent } from "../support/in-process-agent.js";

/**
 * The cloudsnap and restore workflows from their ASL files, run by the local cloud with the
 * Lambdas from their bundles, against dynalite and the local S3 server. The agent's part is played
 * by an operation runner (the agents' own) with executors that write the volume's catalog in the
 * bucket as the cloudsnap engine would, and fail where a test wants a failure; the engine itself is
 * test/e2e/cloudsnap-automation.test.ts's.
 */

const CLUSTER = "cs-wf";
let dir: string;
let dynamoDb: LocalDynamoDb;
let storage: CloudsnapStorage;
let store: StateStore;
let cloud: LocalCloud;
let sfn: SFNClient;
let runner: OperationRunner;
let heartbeats: NodeJS.Timeout;
let bucket: CloudsnapBucket;
/** Volumes whose uploads fail, and how many uploads each has been asked for. */
const failing = new Set<string>();
const uploads = new Map<string, number>();

beforeAll(async () => {
  dir = await prepareClusterDir("strata-cs-wf-");
  dynamoDb = await startDynamoDb();
  store = await freshStore();
  storage = await startCloudsnapStorage(dir);
  Object.assign(process.env, storage.environment, {
    POWERTOOLS_LOG_LEVEL: "SILENT",
    STRATA_LAMBDA_LOG_LEVEL: "SILENT",
  });
  bucket = new CloudsnapBucket(cloudsnapS3Client({ fresh: true }), storage.bucket);
  cloud = await LocalCloud.start({
    dir,
    clusterName: CLUSTER,
    stateTable: store.tableName,
    zones: ["local-a"],
    // The tests start the workflows themselves.
    timing: { healthSweepMs: 3_600_000, scheduleMs: 3_600_000, waitCapMs: 100, retryCapMs: 200 },
    functionEnvironment: storage.environment,
    report: () => {},
    onDriveChange: () => {},
  });
  sfn = new SFNClient({ endpoint: cloud.environment.AWS_ENDPOINT_URL_SFN });
  const now = new Date().toISOString();
  await store.nodes.register(
    nodeRecord("node-1", { zone: "local-a", lastHeartbeat: now, registeredAt: now }),
  );
  heartbeats = setInterval(() => void store.nodes.heartbeat("node-1", { freeBytes: 1024 ** 3 }), 500);
  runner = new OperationRunner({
    operations: store.operations,
    node: "node-1",
    log: capturingLogger().log,
    pollIntervalMs: 50,
    executors: {
      cloudsnap: async (operation) => {
        uploads.set(operation.volumeName, (uploads.get(operation.volumeName) ?? 0) + 1);
        if (failing.has(operation.volumeName)) throw new Error("the bucket is unreachable");
        const { schedule } = OperationParams.cloudsnap.parse(operation.params);
        return { cloudsnap: (await appendCloudsnap(operation.volumeId, operation.volumeName, schedule)).id };
      },
      "cloudsnap-retention": async (operation) => {
        const { cloudsnaps } = OperationParams["cloudsnap-retention"].parse(operation.params);
        const catalog = await readCatalog(bucket, operation.volumeId);
        const kept = catalog.cloudsnaps.filter((entry) => !cloudsnaps.includes(entry.id));
        await writeCatalog(bucket, { ...catalog, cloudsnaps: kept });
        return { deleted: cloudsnaps };
      },
      restore: async (operation) => {
        await store.volumes.create({
          id: operation.volumeId,
          name: operation.volumeName,
          sizeBytes: 4096,
          replicationFactor: 1,
        });
        return { volume: operation.volumeName, volumeId: operation.volumeId };
      },
    },
  });
  runner.start();
});

afterAll(async () => {
  clearInterval(heartbeats);
  await runner?.stop();
  sfn?.destroy();
  await cloud?.close();
  await storage?.close();
  store?.close();
  await dynamoDb?.close();
  await rm(dir, { recursive: true, force: true });
});

/** A cloudsnap entry at the end of the volume's catalog, as an upload writes it last. */
async function appendCloudsnap(volumeId: string, volumeName: string, schedule?: Cloudsnap["schedule"]) {
  const catalog = await readCatalog(bucket, volumeId).catch(() => emptyCatalog(volumeId));
  const at = new Date(Math.max(Date.now(), Date.parse(catalog.cloudsnaps.at(-1)?.createdAt ?? "0") + 1));
  const entry = { ...catalogEntry(volumeId, at, schedule), volumeName };
  await writeCatalog(bucket, { ...catalog, cloudsnaps: [...catalog.cloudsnaps, entry] });
  return entry;
}

async function run(workflow: "cloudsnap" | "restore", name: string, input: object) {
  const { executionArn } = await sfn.send(
    new StartExecutionCommand({
      stateMachineArn: cloud.stepFunctions.stateMachineArn(workflowMachine(workflow)),
      name,
      input: JSON.stringify(input),
    }),
  );
  let execution: DescribeExecutionOutput | undefined;
  await eventually(
    async () => {
      execution = await sfn.send(new DescribeExecutionCommand({ executionArn }));
      return execution.status !== "RUNNING";
    },
    `${name} to end`,
    60_000,
  );
  const { events } = await sfn.send(new GetExecutionHistoryCommand({ executionArn, maxResults: 1000 }));
  const states = (events ?? []).flatMap((event) => event.stateEnteredEventDetails?.name ?? []);
  return { execution: execution!, states };
}

interface BusEvent {
  "detail-type": string;
  detail: Record<string, unknown>;
}

async function strataEvents(detailTypePrefix: string): Promise<BusEvent[]> {
  const text = await readFile(join(dir, EVENTS_FILE), "utf8").catch(() => "");
  return text
    .split("\n")
    .filter((line) => line !== "")
    .map((line) => JSON.parse(line) as BusEvent)
    .filter((event) => event["detail-type"].startsWith(detailTypePrefix));
}

describe("the cloudsnap workflow, from its ASL file", () => {
  it("uploads each due volume, keeps `retain` of each schedule and every manual one, retries a failed volume once while the others go on", async () => {
    const orders = await store.volumes.create({ name: "orders", sizeBytes: 4096, replicationFactor: 1 });
    const ledger = await store.volumes.create({ name: "ledger", sizeBytes: 4096, replicationFactor: 1 });
    await store.volumes.create({ name: "scratch", sizeBytes: 4096, replicationFactor: 1 });
    // Daily at midnight: the two runs below share a slot unless they straddle midnight UTC.
    await store.policies.create({ name: "nightly", schedules: { daily: { time: "00:00", retain: 2 } } });
    for (const volume of [orders, ledger]) {
      await store.policies.assign({ volumeId: volume.id, volumeName: volume.name, policy: "nightly" });
    }
    // orders has a manual cloudsnap and two scheduled ones from earlier days.
    await appendCloudsnap(orders.id, "orders");
    const earlier = [await appendCloudsnap(orders.id, "orders", "daily")];
    earlier.push(await appendCloudsnap(orders.id, "orders", "daily"));
    const catalog = await readCatalog(bucket, orders.id);
    // Made before today's slot began, so the schedule is due now.
    const old = (entry: Cloudsnap, days: number) => ({
      ...entry,
      createdAt: new Date(Date.now() - days * 86_400_000).toISOString(),
    });
    await writeCatalog(bucket, {
      ...catalog,
      cloudsnaps: [
        old(catalog.cloudsnaps[0]!, 4),
        old(catalog.cloudsnaps[1]!, 3),
        old(catalog.cloudsnaps[2]!, 2),
      ],
    });
    failing.add("ledger");

    const { execution, states } = await run("cloudsnap", "scheduled-1", {});
    expect(execution.status).toBe("SUCCEEDED");
    for (const state of [
      "FindDue",
      "StartUpload",
      "PollUpload",
      "ApplyRetention",
      "PollRetention",
      "ReportCompleted",
    ])
      expect(states).toContain(state);
    expect(states).toContain("UseSecondAttempt");

    // orders: the new cloudsnap and the latest earlier one kept, the oldest scheduled one deleted,
    // the manual one untouched.
    const kept = await readCatalog(bucket, orders.id);
    expect(kept.cloudsnaps.map((entry) => entry.schedule ?? "manual")).toEqual(["manual", "daily", "daily"]);
    expect(kept.cloudsnaps[1]!.id).toBe(earlier[1]!.id);
    const completed = await strataEvents("Strata Cloudsnap Completed");
    expect(completed.map((event) => event.detail)).toEqual([
      expect.objectContaining({
        clusterName: CLUSTER,
        volume: "orders",
        schedule: "daily",
        cloudsnap: kept.cloudsnaps[2]!.id,
        cloudsnaps: [kept.cloudsnaps[2]!.id],
        expired: [earlier[0]!.id],
      }),
    ]);
    // ledger: two operations (the second under a new token), then one Failed event saying why.
    expect(uploads.get("ledger")).toBe(2);
    const ledgerOperations = (await store.operations.listByVolume(ledger.id)).filter(
      (op) => op.kind === "cloudsnap",
    );
    expect(new Set(ledgerOperations.map((op) => op.requestToken)).size).toBe(2);
    const failed = await strataEvents("Strata Cloudsnap Failed");
    expect(failed.map((event) => event.detail)).toEqual([
      expect.objectContaining({
        volume: "ledger",
        schedule: "daily",
        reason: "the bucket is unreachable",
      }),
    ]);
    expect(uploads.has("scratch")).toBe(false);

    // A second run the same day finds nothing due: orders has this slot's cloudsnap.
    failing.delete("ledger");
    const uploadsBefore = uploads.get("orders");
    await run("cloudsnap", "scheduled-2", {});
    expect(uploads.get("orders")).toBe(uploadsBefore);
  });
});

describe("the restore workflow, from its ASL file", () => {
  it("restores a cloudsnap into a new volume and says so; refuses bad input, naming what is wrong", async () => {
    const source = await store.volumes.create({ name: "source", sizeBytes: 4096, replicationFactor: 1 });
    const cloudsnap = await appendCloudsnap(source.id, "source");

    const restored = await run("restore", "restore-ok", { cloudsnap: cloudsnap.id, volume: "copy" });
    expect(restored.execution.status).toBe("SUCCEEDED");
    expect((await store.volumes.getByName("copy")).id).toEqual(expect.any(String));

    const refused = await run("restore", "restore-taken", { cloudsnap: cloudsnap.id, volume: "copy" });
    expect(refused.execution.status).toBe("FAILED");
    expect(refused.execution.error).toBe("Strata.RestoreFailed");
    expect(refused.states).not.toContain("StartRestore");
    const misspelt = await run("restore", "restore-misspelt", { cloudsnap: cloudsnap.id, name: "other" });
    expect(misspelt.execution.status).toBe("FAILED");

    expect(
      (await strataEvents("Strata Restore")).map((event) => [event["detail-type"], event.detail]),
    ).toEqual([
      ["Strata Restore Completed", expect.objectContaining({ volume: "copy", cloudsnap: cloudsnap.id })],
      [
        "Strata Restore Failed",
        expect.objectContaining({
          volume: "copy",
          reason: 'Strata.Refused: volume "copy" already exists: restore into a new name',
        }),
      ],
      [
        "Strata Restore Failed",
        expect.objectContaining({
          volume: "(unknown)",
          reason: expect.stringContaining(
            'request.volume: Invalid input: expected string, received undefined; request: Unrecognized key: "name"',
          ),
        }),
      ],
    ]);
  });
});

describe("snapshot schedules in the cloudsnap workflow, from its ASL file", () => {
  let agent: InProcessAgent;
  beforeAll(async () => {
    // A real agent: its scheduled-snapshot executor takes and deletes snapshots on its replicas.
    agent = await startInProcessAgent({
      store,
      nodeId: "node-2",
      zone: "local-a",
      log: capturingLogger().log,
    });
  });
  afterAll(async () => {
    await agent?.close();
  });

  const DAY_MS = 86_400_000;
  const snapshotNames = async (volume: string) =>
    (await agent.volumes.listSnapshots(volume)).map((snapshot) => snapshot.name).sort();
  /** A snapshot taken `days` ago (as its schedule would: by hand, the name is refused), its record dated back. */
  const takenDaysAgo = async (volume: string, name: string, days: number) => {
    await agent.volumes.createGroupSnapshot([volume], name);
    const { id: volumeId } = await store.volumes.getByName(volume);
    const record = await store.snapshots.get(volumeId, name);
    await store.snapshots.delete(volumeId, name);
    await store.snapshots.create({
      ...record,
      createdAt: new Date(Date.now() - days * DAY_MS).toISOString(),
    });
  };

  it("snapshots a group together and a volume alone, and retention deletes the scheduled ones beyond retain or maxAge, never one taken by hand", async () => {
    for (const name of ["pg-data", "pg-wal", "solo"]) {
      await agent.volumes.createVolume({
        name,
        sizeBytes: 4 * 1024 ** 2,
        replicationFactor: 1,
        labels: {},
        nodeSelector: {},
      });
    }
    await store.policies.create({
      name: "nightly-snapshots",
      snapshots: { daily: { time: "00:00", retain: 2, maxAge: "3d" } },
    });
    for (const name of ["pg-data", "pg-wal"]) {
      const { id } = await store.volumes.getByName(name);
      await store.policies.assign({
        volumeId: id,
        volumeName: name,
        policy: "nightly-snapshots",
        group: "pg",
      });
    }
    const solo = await store.volumes.getByName("solo");
    await store.policies.assign({ volumeId: solo.id, volumeName: "solo", policy: "nightly-snapshots" });
    const daysAgo = (days: number) => scheduledSnapshotName("daily", new Date(Date.now() - days * DAY_MS));
    const [tenDays, twoDays, oneDay] = [daysAgo(10), daysAgo(2), daysAgo(1)];
    await takenDaysAgo("solo", "before-upgrade", 20);
    await takenDaysAgo("solo", tenDays, 10);
    await takenDaysAgo("solo", twoDays, 2);
    await takenDaysAgo("solo", oneDay, 1);

    const { execution, states } = await run("cloudsnap", "snapshots-1", {});
    expect(execution.status).toBe("SUCCEEDED");
    expect(states).toContain("Retention?");

    const [taken] = (await snapshotNames("pg-data")).filter((name) => !name.startsWith("cloudsnap-"));
    expect(taken).toMatch(/^daily-\d{8}T0000Z$/);
    expect(await snapshotNames("pg-wal")).toEqual([taken]);
    // Ten days old is past maxAge and beyond the last 2; two days old is only beyond the last 2.
    expect(await snapshotNames("solo")).toEqual(["before-upgrade", oneDay, taken].sort());
    const events = (await strataEvents("Strata Snapshot")).map((event) => [
      event["detail-type"],
      event.detail,
    ]);
    expect(events).toEqual(
      expect.arrayContaining([
        [
          "Strata Snapshot Completed",
          expect.objectContaining({
            volume: "pg-data",
            volumes: ["pg-data", "pg-wal"],
            snapshot: taken,
            expired: [],
          }),
        ],
        [
          "Strata Snapshot Completed",
          expect.objectContaining({
            volume: "solo",
            volumes: ["solo"],
            snapshot: taken,
            schedule: "daily",
            expired: [`solo@${tenDays}`, `solo@${twoDays}`],
          }),
        ],
      ]),
    );
    expect(events).toHaveLength(2);

    // Another run the same day finds the slot taken: nothing new, nothing deleted.
    await run("cloudsnap", "snapshots-2", {});
    expect(await snapshotNames("solo")).toEqual(["before-upgrade", oneDay, taken].sort());
    expect(await strataEvents("Strata Snapshot")).toHaveLength(2);
  });
});

describe("the local cloud's KMS", () => {
  it("keeps the keys made through its endpoint in the cluster directory, for cloudsnaps a restarted cluster restores", async () => {
    const kms = new KMSClient({ endpoint: cloud.environment.AWS_ENDPOINT_URL_KMS });
    const { KeyMetadata } = await kms.send(new CreateKeyCommand({ Description: "cloudsnaps" }));
    kms.destroy();
    const saved = async () =>
      (await readFile(join(dir, KMS_FILE), "utf8").catch(() => "")).includes(KeyMetadata!.KeyId!);
    await eventually(saved, `${KMS_FILE} holding key ${KeyMetadata!.KeyId}`);
  });
});
