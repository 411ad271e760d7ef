import { DynamoDBClient } from "@aws-sdk/client-dynamodb";
import { DynamoDBDocumentClient, PutCommand, QueryCommand } from "@aws-sdk/lib-dynamodb";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { failIfStalled, whyStalled } from "../../core/operations.js";
import { RecordNotFoundError } from "../../core/state/errors.js";
import { operationQueuePartition, operationTokenKey, queuedOperationKey } from "../../core/state/keys.js";
import type { LocalDynamoDb } from "../../core/state/local-dynamodb.js";
import { ABANDONED_RESERVATION_MS } from "../../core/state/names.js";
import { type NewOperation, OPERATION_RETENTION_SECONDS } from "../../core/state/operations.js";
import type { StateStore } from "../../core/state/store.js";
import { nodeRecord } from "./fixtures.js";
import { freshStore, startDynamoDb } from "./state-harness.js";

let dynamoDb: LocalDynamoDb;
let store: StateStore;
let now = new Date("2030-01-01T00:00:00.000Z");

beforeAll(async () => {
  dynamoDb = await startDynamoDb();
  store = await freshStore(() => now);
});

afterAll(async () => {
  store.close();
  await dynamoDb.close();
});

const rebuild = (requestToken: string, overrides: Partial<NewOperation> = {}): NewOperation => ({
  requestToken,
  kind: "rebuild",
  volumeId: "vol-1",
  volumeName: "pg-data",
  node: "node-1",
  params: { replicaId: "r-2" },
  ...overrides,
});

describe("starting operations", () => {
  it("starts a pending operation queued for its node", async () => {
    const started = await store.operations.start(rebuild("start-1"));
    expect(started).toMatchObject({
      kind: "rebuild",
      volumeId: "vol-1",
      volumeName: "pg-data",
      node: "node-1",
      state: "pending",
      params: { replicaId: "r-2" },
      progress: null,
      error: null,
      requestToken: "start-1",
      createdAt: "2030-01-01T00:00:00.000Z",
      startedAt: null,
      endedAt: null,
    });
    expect(await store.operations.get(started.id)).toEqual(started);
    expect((await store.operations.unfinished("node-1")).map((op) => op.id)).toContain(started.id);
    expect(await store.operations.unfinished("node-2")).toEqual([]);
  });

  it("starts one operation for one request token, however often it is asked", async () => {
    const [first, second] = await Promise.all([
      store.operations.start(rebuild("twice")),
      store.operations.start(rebuild("twice")),
    ]);
    expect(second!.id).toBe(first!.id);
    expect(await store.operations.start(rebuild("twice"))).toEqual(await store.operations.get(first!.id));
    expect((await store.operations.list()).filter((op) => op.requestToken === "twice")).toHaveLength(1);
  });

  it("refuses a request token already used for another operation", async () => {
    const first = await store.operations.start(rebuild("reused"));
    await expect(store.operations.start(rebuild("reused", { volumeId: "vol-2" }))).rejects.toThrow(
      `request token "reused" already started operation ${first.id} (rebuild of volume vol-1 on node-1)`,
    );
    await expect(
      store.operations.start(rebuild("reused", { kind: "repair", params: {} })),
    ).rejects.toMatchObject({ code: "FAILED_PRECONDITION" });
  });

  it("completes a start that took its token and stopped there", async () => {
    const token = {
      requestToken: "cut-short",
      operationId: "op-cut-short",
      kind: "resync",
      volumeId: "vol-1",
      node: "node-1",
      createdAt: now.toISOString(),
      expiresAt: 2_000_000_000,
    };
    const raw = DynamoDBDocumentClient.from(new DynamoDBClient({}));
    await raw.send(
      new PutCommand({ TableName: store.tableName, Item: { ...operationTokenKey("cut-short"), ...token } }),
    );
    raw.destroy();
    const retried = await store.operations.start(rebuild("cut-short", { kind: "resync" }));
    expect(retried).toMatchObject({ id: "op-cut-short", kind: "resync", state: "pending" });
  });

  it("drops a queue item whose start never wrote the record, once it is old", async () => {
    const raw = DynamoDBDocumentClient.from(new DynamoDBClient({}));
    const item = { operationId: "op-never-written", createdAt: now.toISOString() };
    await raw.send(
      new PutCommand({
        TableName: store.tableName,
        Item: { ...queuedOperationKey("node-5", item.operationId), ...item },
      }),
    );
    const queue = () =>
      raw.send(
        new QueryCommand({
          TableName: store.tableName,
          KeyConditionExpression: "pk = :pk",
          ExpressionAttributeValues: { ":pk": operationQueuePartition("node-5") },
        }),
      );
    expect(await store.operations.unfinished("node-5")).toEqual([]);
    expect((await queue()).Items).toHaveLength(1);
    const startedAt = now;
    now = new Date(startedAt.getTime() + ABANDONED_RESERVATION_MS + 1000);
    expect(await store.operations.unfinished("node-5")).toEqual([]);
    expect((await queue()).Items).toEqual([]);
    now = startedAt;
    raw.destroy();
  });

  it("refuses params that do not fit the kind, naming the field", async () => {
    await expect(store.operations.start(rebuild("bad-params", { params: {} }))).rejects.toThrow(
      /invalid rebuild params[\s\S]*replicaId/,
    );
    await expect(
      store.operations.start(rebuild("bad-params", { kind: "clone", params: { snapshot: "s", targe: "x" } })),
    ).rejects.toThrow(/targe/);
  });
});

describe("state transitions", () => {
  it("is claimed once, reports progress only to its runner, and ends once", async () => {
    const { id } = await store.operations.start(rebuild("transitions"));
    expect(await store.operations.claim(id, "node-2", "runner-b")).toBeUndefined();
    const claimed = await store.operations.claim(id, "node-1", "runner-a");
    expect(claimed).toMatchObject({ state: "running", runnerId: "runner-a", startedAt: now.toISOString() });
    expect(await store.operations.claim(id, "node-1", "runner-b")).toBeUndefined();

    const progress = { bytesDone: 10, bytesTotal: 40, bytesPerSecond: 5, updatedAt: now.toISOString() };
    expect(await store.operations.reportProgress(id, "runner-b", progress)).toBeUndefined();
    expect(await store.operations.reportProgress(id, "runner-a", progress)).toMatchObject({ progress });

    expect(await store.operations.finish(id, "runner-b", { state: "succeeded" })).toBeUndefined();
    const ended = await store.operations.finish(id, "runner-a", { state: "failed", error: "disk gone" });
    expect(ended).toMatchObject({
      state: "failed",
      error: "disk gone",
      endedAt: now.toISOString(),
      expiresAt: now.getTime() / 1000 + OPERATION_RETENTION_SECONDS,
    });
    expect(await store.operations.finish(id, "runner-a", { state: "succeeded" })).toBeUndefined();
    expect((await store.operations.unfinished("node-1")).map((op) => op.id)).not.toContain(id);
  });

  it("cancels a pending operation at once, asks a running one's runner, refuses an ended one", async () => {
    const pending = await store.operations.start(rebuild("cancel-pending"));
    expect(await store.operations.requestCancel(pending.id)).toMatchObject({
      state: "cancelled",
      cancelRequested: true,
    });
    expect(await store.operations.claim(pending.id, "node-1", "runner-a")).toBeUndefined();

    const running = await store.operations.start(rebuild("cancel-running"));
    await store.operations.claim(running.id, "node-1", "runner-a");
    expect(await store.operations.requestCancel(running.id)).toMatchObject({
      state: "running",
      cancelRequested: true,
    });
    await store.operations.finish(running.id, "runner-a", { state: "cancelled" });
    await expect(store.operations.requestCancel(running.id)).rejects.toThrow(
      `operation ${running.id} cannot be cancelled: it has cancelled already`,
    );
    await expect(store.operations.requestCancel("no-such-op")).rejects.toThrow(RecordNotFoundError);
  });

  it("fails an operation only as it was read", async () => {
    const started = await store.operations.start(rebuild("fail-as-read"));
    const claimed = (await store.operations.claim(started.id, "node-1", "runner-a"))!;
    await expect(store.operations.fail(started, "too late")).rejects.toThrow(
      "changed while it was being failed: it is running now",
    );
    expect(await store.operations.fail(claimed, "the agent restarted while it ran")).toMatchObject({
      state: "failed",
      error: "the agent restarted while it ran",
    });
    // Its runner can no longer write to it.
    expect(await store.operations.finish(started.id, "runner-a", { state: "succeeded" })).toBeUndefined();
  });
});

describe("listing", () => {
  it("lists every operation oldest first, by volume and by node", async () => {
    now = new Date("2030-01-02T00:00:00.000Z");
    const a = await store.operations.start(rebuild("list-a", { volumeId: "vol-list", node: "node-7" }));
    now = new Date("2030-01-02T00:00:01.000Z");
    const b = await store.operations.start(rebuild("list-b", { volumeId: "vol-list", node: "node-8" }));
    const all = await store.operations.list();
    expect(all.map((op) => op.createdAt)).toEqual([...all.map((op) => op.createdAt)].sort());
    expect(await store.operations.listByVolume("vol-list")).toEqual([a, b]);
    expect(await store.operations.listByNode("node-8")).toEqual([b]);
  });
});

describe("stalled operations", () => {
  const liveness = { heartbeatTimeoutMs: 10_000, now: new Date("2030-01-03T00:00:30.000Z") };
  const beat = (at: string) => nodeRecord("node-9", { lastHeartbeat: at });

  it("is stalled while unfinished and its node's heartbeat is stale", () => {
    const running = { state: "running", node: "node-9" } as const;
    expect(whyStalled(running, beat("2030-01-03T00:00:25.000Z"), liveness)).toBeUndefined();
    expect(whyStalled(running, beat("2030-01-03T00:00:10.000Z"), liveness)).toBe(
      "node-9: no heartbeat for 20s",
    );
    expect(
      whyStalled({ ...running, state: "pending" }, nodeRecord("node-9", { state: "down" }), liveness),
    ).toBe("node-9: down");
    expect(whyStalled(running, undefined, liveness)).toBe("node-9: not registered");
    expect(whyStalled({ ...running, state: "failed" }, undefined, liveness)).toBeUndefined();
  });

  it("is failed by its caller, who starts another", async () => {
    await store.nodes.register(beat("2030-01-03T00:00:10.000Z"));
    const stuck = await store.operations.start(rebuild("stalled-1", { node: "node-9" }));
    await store.operations.claim(stuck.id, "node-9", "runner-dead");
    expect(await failIfStalled(store, stuck.id, liveness)).toMatchObject({
      state: "failed",
      error: "stalled: node-9: no heartbeat for 20s",
    });
    const again = await store.operations.start(rebuild("stalled-2", { node: "node-1" }));
    expect(again.state).toBe("pending");

    await store.nodes.register(beat("2030-01-03T00:00:29.000Z"));
    const live = await store.operations.start(rebuild("stalled-3", { node: "node-9" }));
    await expect(failIfStalled(store, live.id, liveness)).rejects.toThrow(
      `operation ${live.id} is not stalled: it is pending on node-9`,
    );
  });
});
