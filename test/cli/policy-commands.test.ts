import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startControlApi } from "../../agent/api/server.js";
import { StorePolicies } from "../../agent/volumes/policies.js";
import type { LocalDynamoDb } from "../../core/state/local-dynamodb.js";
import type { StateStore } from "../../core/state/store.js";
import { writeClusterFile } from "../../infra/local/cluster-file.js";
import { capturingLogger } from "../api/harness.js";
import { freshStore, startDynamoDb } from "../core/state-harness.js";
import { type InProcessAgent, startInProcessAgent } from "../support/in-process-agent.js";
import { oneSentence, strata } from "./strata-process.js";

/**
 * `strata policy` as a user runs it (the built binary), against one real agent in this process
 * serving the control API over a fresh state table: what the flags make, how `policy show` reads,
 * and the one-sentence refusals of impossible schedules (exit 2, nothing sent).
 */

let dir: string;
let dynamoDb: LocalDynamoDb;
let store: StateStore;
let agent: InProcessAgent;
const run = (...args: string[]) => strata(["--dir", dir, ...args]);

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "strata-policy-cli-"));
  dynamoDb = await startDynamoDb();
  store = await freshStore();
  const { log } = capturingLogger();
  agent = await startInProcessAgent({
    store,
    nodeId: "node-1",
    zone: "local-a",
    log,
    serveApi: (volumes, operations) =>
      startControlApi({
        service: volumes,
        operations: operations.service,
        policies: new StorePolicies(store),
        host: "127.0.0.1",
        port: 0,
        log,
      }),
  });
  const node = (await store.nodes.get("node-1")).addresses;
  // What `cluster up` writes: this process stands in for its supervisor.
  await writeClusterFile(dir, {
    pid: process.pid,
    startedAt: new Date().toISOString(),
    dynamodb: { endpoint: dynamoDb.endpoint, table: store.tableName },
    nodes: [
      {
        id: "node-1",
        zone: "local-a",
        apiUrl: node.api,
        nbdAddress: node.nbd,
        nbdSocket: null,
        dataDir: dir,
      },
    ],
  });
});

afterAll(async () => {
  await agent?.close();
  store?.close();
  await dynamoDb?.close();
  await rm(dir, { recursive: true, force: true });
});

describe("strata policy", () => {
  it("creates cloudsnap and snapshot schedules from flags, and shows every schedule with its kind, time and retention", async () => {
    const created = await run(
      ...["policy", "create", "gold", "--interval", "60m", "--retain", "24"],
      ...["--daily", "02:00", "--daily-max-age", "7d", "--cron", "0 */6 * * *", "--cron-retain", "4"],
      ...["--cron-max-age", "2w", "--snapshot-interval", "15", "--snapshot-max-age", "12h"],
      ...["--snapshot-weekly", "sunday@03:00", "--snapshot-weekly-retain", "4"],
    );
    expect(created).toMatchObject({ code: 0, stdout: 'policy "gold" created\n' });

    const shown = await run("--json", "policy", "show", "gold");
    expect(JSON.parse(shown.stdout)).toEqual({
      name: "gold",
      schedules: {
        interval: { minutes: 60, retain: 24 },
        daily: { time: "02:00", maxAge: "7d" },
        cron: { expression: "0 */6 * * *", retain: 4, maxAge: "2w" },
      },
      snapshots: {
        interval: { minutes: 15, maxAge: "12h" },
        weekly: { day: "sunday", time: "03:00", retain: 4 },
      },
      createdAt: expect.any(String),
      volumes: [],
    });
    const table = (await run("policy", "show", "gold")).stdout.split("\n");
    expect(table.slice(0, 3).map((line) => line.split(":")[0])).toEqual(["Name", "Created", "Volumes"]);
    expect(table.slice(4).map((line) => line.split(/\s{3,}/))).toEqual([
      ["COPY", "SCHEDULE", "WHEN", "KEEPS"],
      ["cloudsnap", "interval", "every 60 min", "last 24"],
      ["cloudsnap", "daily", "02:00 UTC", "within 7d"],
      ["cloudsnap", "cron", "cron 0 */6 * * * (UTC)", "last 4 within 2w"],
      ["snapshot", "interval", "every 15 min", "within 12h"],
      ["snapshot", "weekly", "sunday 03:00 UTC", "last 4"],
      [""],
    ]);
    const listed = (await run("policy", "list")).stdout.split("\n");
    expect(listed[1]!.split(/\s{3,}/).slice(0, 3)).toEqual([
      "gold",
      "interval, daily, cron",
      "interval, weekly",
    ]);
  });

  it.each([
    [
      ["--cron", "0 25 * * *", "--cron-retain", "1"],
      'schedules.cron.expression field 2 (hour) "25" is not valid',
    ],
    [
      ["--cron", "*/5 * * * * *", "--cron-retain", "1"],
      "schedules.cron.expression has 6 fields: a seconds field would fire more often than once a minute",
    ],
    [
      ["--daily", "02:00"],
      "--daily needs --daily-retain N or --daily-max-age AGE (or both): how many of its cloudsnaps to keep, or for how long",
    ],
    [["--snapshot-daily-max-age", "7d"], "--snapshot-daily-max-age needs --snapshot-daily"],
    [
      ["--snapshot-daily", "01:00", "--snapshot-daily-max-age", "7 days"],
      'snapshots.daily.maxAge must be a duration like 30m, 12h, 7d or 2w (a whole number and m, h, d or w), not "7 days"',
    ],
    [
      ["--interval", "90s", "--retain", "1"],
      'invalid --interval "90s": use a duration like 15m, 2h or 1d, or a number of minutes',
    ],
    [[], "a policy needs at least one schedule"],
  ])("refuses %j in one sentence naming what is wrong, exit 2", async (flags, message) => {
    const refused = await run("policy", "create", "bad", ...flags);
    expect(refused.code).toBe(2);
    expect(oneSentence(refused)).toContain(message);
    expect(
      await store.policies.list().then((policies) => policies.map((policy) => policy.name)),
    ).not.toContain("bad");
  });

  it("lets a policy go once the volume that followed it is deleted", async () => {
    expect((await run("policy", "create", "hourly", "--interval", "1h", "--retain", "2")).code).toBe(0);
    expect((await run("volume", "create", "scratch", "--size", "4MiB", "--policy", "hourly")).code).toBe(0);
    const refused = await run("policy", "delete", "hourly");
    expect(oneSentence(refused)).toContain('policy "hourly" is assigned to volume(s) "scratch"');
    expect((await run("volume", "delete", "scratch")).code).toBe(0);
    expect(await run("policy", "delete", "hourly")).toMatchObject({
      code: 0,
      stdout: 'policy "hourly" deleted\n',
    });
  });
});

describe("strata --api", () => {
  it("talks to the one agent it names, with no cluster directory; refuses a bad URL as usage, and says an unreachable agent in one sentence", async () => {
    const api = (await store.nodes.get("node-1")).addresses.api;
    // No cluster directory anywhere: STRATA_HOME names one that does not exist.
    const env = { STRATA_HOME: join(dir, "no-such-cluster") };
    await strata(["--api", api, "policy", "create", "by-api", "--interval", "30m", "--retain", "2"], env);
    const listed = await strata(["--api", `${api}/`, "--json", "policy", "list"], env);
    expect(listed.code).toBe(0);
    expect(JSON.parse(listed.stdout).policies.map((policy: { name: string }) => policy.name)).toContain(
      "by-api",
    );
    // As an agent on EKS is given to every command of a shell: the environment.
    expect((await strata(["policy", "show", "by-api"], { ...env, STRATA_API_URL: api })).code).toBe(0);

    const ftp = await strata(["--api", "ftp://10.0.0.1", "policy", "list"], env);
    expect(ftp.code).toBe(2);
    expect(oneSentence(ftp)).toBe(
      '--api must be an http:// or https:// URL of an agent\'s control API, got "ftp://10.0.0.1"',
    );
    const both = await strata(["--api", api, "--node", "node-1", "policy", "list"], env);
    expect(both.code).toBe(2);
    expect(oneSentence(both)).toContain("give --api or --node, not both");
    const gone = await strata(["--api", "http://127.0.0.1:1", "policy", "list"], env);
    expect(gone.code).toBe(1);
    expect(oneSentence(gone)).toBe(
      "cannot reach the Strata agent at http://127.0.0.1:1: is it running (locally, `strata cluster up`), and is its API port open to you?",
    );
  });
});
