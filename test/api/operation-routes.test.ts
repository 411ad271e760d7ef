import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Operation, StoreOperationService } from "../../core/operations.js";
import type { LocalDynamoDb } from "../../core/state/local-dynamodb.js";
import type { StateStore } from "../../core/state/store.js";
import type { VolumeService } from "../../core/volume-service.js";
import { GiB, nodeRecord } from "../core/fixtures.js";
import { freshStore, startDynamoDb } from "../core/state-harness.js";
import { type ApiUnderTest, call, errorOf, serveApi } from "./harness.js";

/** The operation routes take no part of the volume service: a stand-in that is never called. */
const noVolumes = new Proxy({} as VolumeService, {
  get: () => async () => {
    throw new Error("the operation routes must not call the volume service");
  },
});

const now = new Date("2030-01-01T00:00:30.000Z");
let dynamoDb: LocalDynamoDb;
let store: StateStore;
let api: ApiUnderTest;

beforeAll(async () => {
  dynamoDb = await startDynamoDb();
  store = await freshStore(() => now);
  await store.nodes.register(nodeRecord("node-1", { lastHeartbeat: "2030-01-01T00:00:29.000Z" }));
  await store.nodes.register(nodeRecord("node-2", { lastHeartbeat: "2030-01-01T00:00:05.000Z" }));
  await store.volumes.create({ name: "pg-data", sizeBytes: GiB, replicationFactor: 2 });
  await store.volumes.create({ name: "logs", sizeBytes: GiB, replicationFactor: 1 });
  const operations = new StoreOperationService(store, {
    node: "node-1",
    heartbeatTimeoutMs: 10_000,
    clock: () => now,
  });
  api = await serveApi(noVolumes, operations);
});

afterAll(async () => {
  await api?.close();
  store?.close();
  await dynamoDb?.close();
});

const request = (method: string, path: string, body?: unknown) => call(api.url, method, path, body);
const rebuild = (requestToken: string, extra: Record<string, unknown> = {}) => ({
  kind: "rebuild",
  volume: "pg-data",
  requestToken,
  params: { replicaId: "r-2" },
  ...extra,
});

describe("starting an operation", () => {
  it("starts it on this node, once per request token", async () => {
    const first = await request("POST", "/v1/operations", rebuild("api-1"));
    expect(first.status).toBe(201);
    const started = Operation.parse(first.body);
    expect(started).toMatchObject({
      kind: "rebuild",
      volumeName: "pg-data",
      node: "node-1",
      state: "pending",
      requestToken: "api-1",
      stalled: null,
    });
    const again = await request("POST", "/v1/operations", rebuild("api-1"));
    expect(Operation.parse(again.body).id).toBe(started.id);
    expect((await store.operations.unfinished("node-1")).map((op) => op.id)).toEqual([started.id]);
  });

  it("starts it on the node named, and says when that node is down", async () => {
    const answer = await request("POST", "/v1/operations", rebuild("api-2", { node: "node-2" }));
    expect(Operation.parse(answer.body)).toMatchObject({
      node: "node-2",
      stalled: "node-2: no heartbeat for 25s",
    });
  });

  it("refuses a reused token, an unknown volume or node, naming what is wrong", async () => {
    const reused = await request("POST", "/v1/operations", rebuild("api-1", { volume: "logs" }));
    expect(reused.status).toBe(409);
    expect(errorOf(reused).message).toMatch(/^request token "api-1" already started operation /);

    const noVolume = await request("POST", "/v1/operations", rebuild("api-3", { volume: "nope" }));
    expect([noVolume.status, errorOf(noVolume).message]).toEqual([404, 'volume "nope" not found']);
    const noNode = await request("POST", "/v1/operations", rebuild("api-3", { node: "node-9" }));
    expect([noNode.status, errorOf(noNode).message]).toEqual([404, "node node-9 not found"]);
  });

  it("answers a malformed start with a 400 naming the field", async () => {
    const cases: [unknown, string][] = [
      [{ kind: "rebuild", volume: "pg-data", params: { replicaId: "r" } }, 'missing field "requestToken"'],
      [rebuild("api-4", { kind: "defrag" }), 'field "kind"'],
      [rebuild("api-4", { params: {} }), 'missing field "params.replicaId"'],
      [rebuild("api-4", { params: { replicaId: "r", force: true } }), 'unknown field "params.force"'],
      [rebuild("api-4", { volume: "no/slash" }), 'field "volume"'],
      [rebuild("bad token!"), 'field "requestToken"'],
      [rebuild("api-4", { nodes: "node-2" }), 'unknown field "nodes"'],
    ];
    for (const [body, named] of cases) {
      const answer = await request("POST", "/v1/operations", body);
      expect(answer.status, JSON.stringify(body)).toBe(400);
      expect(errorOf(answer).message).toContain(named);
    }
  });
});

describe("reading and cancelling operations", () => {
  it("lists every operation, or one volume's, and reads one", async () => {
    const logs = Operation.parse(
      (await request("POST", "/v1/operations", { kind: "repair", volume: "logs", requestToken: "api-5" }))
        .body,
    );
    const all = (await request("GET", "/v1/operations")).body as { operations: Operation[] };
    // One clock for the whole suite: they were all created at the same instant.
    expect(all.operations.map((op) => op.requestToken).sort()).toEqual(["api-1", "api-2", "api-5"]);
    const ofLogs = await request("GET", "/v1/operations?volume=logs");
    expect(ofLogs.body).toEqual({ operations: [logs] });
    expect((await request("GET", `/v1/operations/${logs.id}`)).body).toEqual(logs);
  });

  it("refuses a bad filter, and says when an operation does not exist", async () => {
    const typo = await request("GET", "/v1/operations?volum=logs");
    expect([typo.status, errorOf(typo).message]).toEqual([400, 'invalid query: unknown field "volum"']);
    const missing = await request("GET", "/v1/operations/no-such-op");
    expect([missing.status, errorOf(missing).message]).toEqual([404, "operation no-such-op not found"]);
    const noVolume = await request("GET", "/v1/operations?volume=nope");
    expect(noVolume.status).toBe(404);
  });

  it("cancels a pending operation, and refuses to cancel it again", async () => {
    const { id } = Operation.parse((await request("POST", "/v1/operations", rebuild("api-6"))).body);
    const cancelled = await request("POST", `/v1/operations/${id}/cancel`);
    expect(cancelled.status).toBe(200);
    expect(Operation.parse(cancelled.body)).toMatchObject({ state: "cancelled", cancelRequested: true });
    const again = await request("POST", `/v1/operations/${id}/cancel`);
    expect([again.status, errorOf(again).message]).toEqual([
      409,
      `operation ${id} cannot be cancelled: it has cancelled already`,
    ]);
    const withBody = await request("POST", `/v1/operations/${id}/cancel`, { force: true });
    expect(withBody.status).toBe(400);
  });
});
