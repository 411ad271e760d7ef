import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { MAX_BODY_BYTES } from "../../agent/api/request-body.js";
import { Attachment, NodeStatus, Snapshot, Volume } from "../../core/model.js";
import { type ApiUnderTest, call, errorOf, rawRequest, startAgentApi } from "./harness.js";

const GiB = 1024 ** 3;
let agent: ApiUnderTest;

beforeAll(async () => {
  agent = await startAgentApi();
});
afterAll(async () => {
  await agent?.close();
});

const request = (method: string, path: string, body?: unknown) => call(agent.url, method, path, body);

describe("probes", () => {
  it("answers /healthz", async () => {
    const answer = await request("GET", "/healthz");
    expect(answer.status).toBe(200);
    expect(answer.body).toEqual({ status: "ok" });
  });

  it("serves Prometheus metrics as text", async () => {
    const answer = await request("GET", "/metrics");
    expect(answer.status).toBe(200);
    expect(answer.headers.get("content-type")).toMatch(/^text\/plain/);
    expect(answer.body).toContain("# TYPE strata_volumes gauge");
  });

  it("logs probes at debug level and API calls at info level", async () => {
    await request("GET", "/healthz");
    await request("GET", "/v1/volumes");
    const access = agent.lines.filter((line) => line.msg === "control request");
    expect(access.find((line) => line.path === "/healthz")?.level).toBe(20);
    expect(access.find((line) => line.path === "/v1/volumes")).toMatchObject({
      level: 30,
      method: "GET",
      status: 200,
    });
  });
});

describe("volumes and snapshots", () => {
  it("reports the node", async () => {
    const answer = await request("GET", "/v1/node");
    expect(answer.status).toBe(200);
    const node = NodeStatus.parse(answer.body);
    expect(node).toMatchObject({ id: "node-1", zone: "local-a", state: "up" });
  });

  it("creates, lists, reads and grows a volume", async () => {
    const created = await request("POST", "/v1/volumes", {
      name: "db",
      sizeBytes: GiB,
      labels: { app: "pg" },
    });
    expect(created.status).toBe(201);
    expect(Volume.parse(created.body)).toMatchObject({ name: "db", sizeBytes: GiB, labels: { app: "pg" } });

    const listed = await request("GET", "/v1/volumes");
    expect((listed.body as { volumes: Volume[] }).volumes.map((v) => v.name)).toContain("db");

    const read = await request("GET", "/v1/volumes/db");
    expect(read.status).toBe(200);
    expect(Volume.parse(read.body).attachedNode).toBeNull();

    const grown = await request("PATCH", "/v1/volumes/db", { sizeBytes: 2 * GiB });
    expect(grown.status).toBe(200);
    expect(Volume.parse(grown.body).sizeBytes).toBe(2 * GiB);
  });

  it("refuses a duplicate name with 409", async () => {
    const again = await request("POST", "/v1/volumes", { name: "db", sizeBytes: GiB });
    expect(again.status).toBe(409);
    expect(errorOf(again).code).toBe("ALREADY_EXISTS");
    expect(errorOf(again).message).toContain('"db"');
  });

  it("refuses to shrink with 400", async () => {
    const shrink = await request("PATCH", "/v1/volumes/db", { sizeBytes: GiB });
    expect(shrink.status).toBe(400);
    expect(errorOf(shrink).code).toBe("INVALID_ARGUMENT");
  });

  it("attaches, refuses to delete while attached, detaches", async () => {
    const attached = await request("POST", "/v1/volumes/db/attach");
    expect(attached.status).toBe(200);
    expect(Attachment.parse(attached.body)).toMatchObject({
      volume: "db",
      nbdUri: "nbd://127.0.0.1:10809/db",
    });

    const refused = await request("DELETE", "/v1/volumes/db");
    expect(refused.status).toBe(409);
    expect(errorOf(refused)).toMatchObject({ code: "FAILED_PRECONDITION" });
    expect(errorOf(refused).message).toMatch(/attached/);

    const detached = await request("POST", "/v1/volumes/db/detach", {});
    expect(detached.status).toBe(204);
    expect(detached.body).toBeUndefined();
  });

  it("snapshots, clones, reverts and deletes", async () => {
    const snap = await request("POST", "/v1/volumes/db/snapshots", { name: "s1" });
    expect(snap.status).toBe(201);
    expect(Snapshot.parse(snap.body)).toMatchObject({ name: "s1", volume: "db" });

    const unnamed = await request("POST", "/v1/volumes/db/snapshots");
    expect(unnamed.status).toBe(201);

    // A schedule's name by hand would be deleted by the schedule's retention: refused, nothing taken.
    const reserved = await request("POST", "/v1/volumes/db/snapshots", { name: "daily-20261203T0200Z" });
    expect(reserved.status).toBe(400);
    expect(errorOf(reserved).message).toBe(
      "snapshot name daily-20261203T0200Z has the form policy schedules name their snapshots by (<schedule>-<UTC minute>), and their retention would delete it; choose another name",
    );

    const listed = await request("GET", "/v1/volumes/db/snapshots");
    expect((listed.body as { snapshots: Snapshot[] }).snapshots.map((s) => s.name)).toContain("s1");
    expect((listed.body as { snapshots: Snapshot[] }).snapshots).toHaveLength(2);

    const clone = await request("POST", "/v1/volumes/db/snapshots/s1/clone", { target: "db-copy" });
    expect(clone.status).toBe(201);
    expect(Volume.parse(clone.body)).toMatchObject({ name: "db-copy", sizeBytes: 2 * GiB });

    const reverted = await request("POST", "/v1/volumes/db/revert", { snapshot: "s1" });
    expect(reverted.status).toBe(200);
    expect(Volume.parse(reverted.body).name).toBe("db");

    expect((await request("DELETE", "/v1/volumes/db/snapshots/s1")).status).toBe(204);
    const gone = await request("DELETE", "/v1/volumes/db/snapshots/s1");
    expect(gone.status).toBe(404);
    expect(errorOf(gone).code).toBe("NOT_FOUND");
  });

  it("deletes a volume, after which it is not found", async () => {
    expect((await request("DELETE", "/v1/volumes/db-copy")).status).toBe(204);
    const missing = await request("GET", "/v1/volumes/db-copy");
    expect(missing.status).toBe(404);
    expect(errorOf(missing)).toEqual({ code: "NOT_FOUND", message: 'volume "db-copy" not found' });
  });
});

describe("request validation", () => {
  it("rejects a body that is not JSON", async () => {
    const answer = await request("POST", "/v1/volumes", "{name: db");
    expect(answer.status).toBe(400);
    expect(errorOf(answer)).toMatchObject({ code: "INVALID_ARGUMENT" });
    expect(errorOf(answer).message).toMatch(/^request body is not valid JSON/);
  });

  it("names an unknown field", async () => {
    const answer = await request("POST", "/v1/volumes", { name: "v", sizeBytes: GiB, colour: "blue" });
    expect(answer.status).toBe(400);
    expect(errorOf(answer).message).toBe('invalid request: unknown field "colour"');
  });

  it("names a field of the wrong type", async () => {
    const answer = await request("POST", "/v1/volumes", { name: "v", sizeBytes: "1GiB" });
    expect(answer.status).toBe(400);
    expect(errorOf(answer).message).toBe(
      'invalid request: field "sizeBytes": expected number, received string',
    );
  });

  it("names a missing field", async () => {
    const answer = await request("POST", "/v1/volumes", { sizeBytes: GiB });
    expect(answer.status).toBe(400);
    expect(errorOf(answer).message).toBe('invalid request: missing field "name" (string)');
  });

  it("says why a value is out of range", async () => {
    const zero = await request("POST", "/v1/volumes", { name: "v", sizeBytes: 0 });
    expect(zero.status).toBe(400);
    expect(errorOf(zero).message).toBe('invalid request: field "sizeBytes": size must be greater than 0');

    const unaligned = await request("PATCH", "/v1/volumes/whatever", { sizeBytes: 4097 });
    expect(unaligned.status).toBe(400);
    expect(errorOf(unaligned).message).toContain("multiple of 4 KiB");
  });

  it("names a bad label key and a body that is not an object", async () => {
    const label = await request("POST", "/v1/volumes", {
      name: "v",
      sizeBytes: GiB,
      labels: { "bad key": "x" },
    });
    expect(label.status).toBe(400);
    expect(errorOf(label).message).toMatch(/invalid key "bad key" in "labels"/);

    const array = await request("POST", "/v1/volumes", [1, 2]);
    expect(array.status).toBe(400);
    expect(errorOf(array).message).toBe("invalid request: request body: expected object, received array");
  });

  it("rejects fields on requests that take none", async () => {
    const answer = await request("POST", "/v1/volumes/db/attach", { force: true });
    expect(answer.status).toBe(400);
    expect(errorOf(answer).message).toContain('unknown field "force"');
  });

  it("checks names in the path", async () => {
    const answer = await request("GET", "/v1/volumes/-bad");
    expect(answer.status).toBe(400);
    expect(errorOf(answer).message).toMatch(/^invalid volume name "-bad": /);
  });

  it("refuses a body over the limit announced by Content-Length with 413", async () => {
    const body = Buffer.alloc(MAX_BODY_BYTES + 1, " ");
    const answer = await rawRequest(agent.url, {
      method: "POST",
      path: "/v1/volumes",
      headers: { "content-type": "application/json", "content-length": body.length },
      chunks: [body],
    });
    expect(answer.status).toBe(413);
    expect(answer.body).toMatchObject({ error: { code: "PAYLOAD_TOO_LARGE" } });
  });

  it("refuses a chunked body that grows over the limit with 413", async () => {
    const chunk = Buffer.alloc(64 * 1024, " ");
    const answer = await rawRequest(agent.url, {
      method: "POST",
      path: "/v1/volumes",
      headers: { "content-type": "application/json", "transfer-encoding": "chunked" },
      chunks: Array.from({ length: MAX_BODY_BYTES / chunk.length + 2 }, () => chunk),
    });
    expect(answer.status).toBe(413);
    expect(answer.body).toMatchObject({ error: { code: "PAYLOAD_TOO_LARGE" } });
  });

  it("answers 404 for an unknown route and 405 for a wrong method", async () => {
    const unknown = await request("GET", "/v1/volume");
    expect(unknown.status).toBe(404);
    expect(errorOf(unknown)).toEqual({ code: "NOT_FOUND", message: "no such API route: GET /v1/volume" });

    const wrong = await request("PUT", "/v1/volumes/db");
    expect(wrong.status).toBe(405);
    expect(wrong.headers.get("allow")).toBe("GET, PATCH, DELETE");
    expect(errorOf(wrong).code).toBe("METHOD_NOT_ALLOWED");
  });
});
