import { createServer } from "node:net";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { startLocalDynamoDb } from "../../core/state/local-dynamodb.js";
import type { NodeRecord } from "../../core/state/records.js";
import { StateStore } from "../../core/state/store.js";
import { nodeRecord } from "../core/fixtures.js";
import { freshStore, startDynamoDb } from "../core/state-harness.js";
import { AgentProcess } from "../support/agent-process.js";
import { eventually } from "../support/eventually.js";
import { run } from "../support/run.js";

/**
 * Node membership against real agent processes and a real dynalite: the agent finds the store only
 * through the standard AWS variables of its environment (set by the harness, inherited by the agent).
 */

/** Port 0: the agent registers the address its replica server really bound. */
const REPLICATION_LISTEN = "127.0.0.1:0";
/** The replica server (and so --replication-listen) needs the cluster secret. */
const CLUSTER_ENV = { STRATA_CLUSTER_SECRET: "membership-test-cluster-secret" };
let dynamoDb: Awaited<ReturnType<typeof startDynamoDb>>;
let store: StateStore;
const agents: AgentProcess[] = [];

beforeAll(async () => {
  // The SDK's notice that it will drop Node 20 one day: noise in the test output (agents inherit this).
  process.env["AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED"] = "true";
  dynamoDb = await startDynamoDb();
  store = await freshStore();
});

afterEach(async () => {
  await Promise.all(agents.splice(0).map((agent) => agent.destroy()));
});

afterAll(async () => {
  store.close();
  await dynamoDb.close();
});

async function startAgent(tableName: string, nodeId: string): Promise<AgentProcess> {
  return agentOf(tableName, nodeId).start();
}

function agentOf(tableName: string, nodeId: string): AgentProcess {
  const agent = new AgentProcess(
    undefined,
    [
      "--node-id",
      nodeId,
      "--zone",
      "local-b",
      "--replication-listen",
      REPLICATION_LISTEN,
      "--state-table",
      tableName,
    ],
    CLUSTER_ENV,
  );
  agents.push(agent);
  return agent;
}

async function registered(nodeId: string, check: (node: NodeRecord) => boolean = () => true) {
  let found: NodeRecord | undefined;
  await eventually(async () => {
    found = (await store.nodes.list()).find((node) => node.id === nodeId);
    return found !== undefined && check(found);
  }, `${nodeId} in the state store`);
  return found!;
}

describe("an agent with --state-table", () => {
  it("registers its node, heartbeats, and marks it down when it stops cleanly", async () => {
    const agent = await startAgent(store.tableName, "node-m1");
    const first = await registered("node-m1");
    expect(first).toMatchObject({
      id: "node-m1",
      zone: "local-b",
      state: "up",
      labels: {},
      addresses: {
        api: agent.endpoints.apiUrl,
        nbd: agent.endpoints.nbdAddress,
        replication: agent.endpoints.replicationAddress,
      },
    });
    expect(first.pool.capacityBytes).toBeGreaterThan(0);
    expect(first.pool.freeBytes).toBeLessThanOrEqual(first.pool.capacityBytes);

    const later = await registered("node-m1", (node) => node.lastHeartbeat > first.lastHeartbeat);
    expect(later.state).toBe("up");

    await agent.stop();
    expect((await store.nodes.get("node-m1")).state).toBe("down");
  });

  it("stops, saying why, when it names no instance and the node's record names one", async () => {
    const now = new Date().toISOString();
    await store.nodes.register(
      nodeRecord("node-m3", {
        zone: "local-b",
        instanceId: "i-0held",
        lastHeartbeat: now,
        registeredAt: now,
      }),
    );
    const agent = agentOf(store.tableName, "node-m3");

    // Refused at its first registration, it never says it is ready.
    await expect(agent.start()).rejects.toThrow(/agent did not start \(exit 1\)/);
    expect(await agent.exited()).toBe(1);
    const errors = agent.stderr
      .split("\n")
      .filter((line) => line.startsWith("{"))
      .map((line) => JSON.parse(line) as { level: number; msg: string })
      .filter((line) => line.level >= 50);
    expect(errors.map((line) => line.msg)).toEqual([
      "node node-m3 is registered on instance i-0held: an agent that names no instance (STRATA_INSTANCE_ID unset) cannot register it; set STRATA_INSTANCE_ID to the instance this agent runs on, or give it another --node-id. This agent stops",
    ]);
    // The record is the other agent's still: not overwritten, not marked down.
    expect(await store.nodes.get("node-m3")).toMatchObject({ instanceId: "i-0held", state: "up" });
  });

  it("starts and answers while the store is unreachable, refuses what needs it, and registers once it answers", async () => {
    // A port nobody listens on yet: the store is down when the agent starts.
    const port = await freePort();
    const reachable = process.env["AWS_ENDPOINT_URL_DYNAMODB"];
    process.env["AWS_ENDPOINT_URL_DYNAMODB"] = `http://127.0.0.1:${port}`;
    let agent: AgentProcess;
    try {
      agent = await startAgent("strata-late", "node-m2");
    } finally {
      process.env["AWS_ENDPOINT_URL_DYNAMODB"] = reachable;
    }
    expect((await agent.api("GET", "/healthz")).status).toBe(200);
    // Every volume has its record in the store (DESIGN.md invariant 6): none is made without it.
    const refused = await agent.api("POST", "/v1/volumes", { name: "offline", sizeBytes: 16 * 1024 * 1024 });
    expect(refused.status).toBeGreaterThanOrEqual(500);

    // The store comes up where the agent was told it is: the retries with backoff reach it.
    const late = await startLocalDynamoDb({ port });
    const lateStore = await withEndpoint(late.endpoint, async () => {
      const created = new StateStore({ tableName: "strata-late" });
      await created.ensureTable();
      return created;
    });
    try {
      let record: NodeRecord | undefined;
      await eventually(async () => {
        record = (await lateStore.nodes.list()).find((node) => node.id === "node-m2");
        return record !== undefined;
      }, "node-m2 registers once the store answers");
      expect(record!.state).toBe("up");
      const uri = await agent.createAttachedVolume("online", 16 * 1024 * 1024);
      const io = await run("qemu-io", [
        "-f",
        "raw",
        "-c",
        "write -P 0x5a 0 1M",
        "-c",
        "flush",
        "-c",
        "read -P 0x5a 0 1M",
        uri,
      ]);
      expect(io).toContain("read 1048576/1048576 bytes");
    } finally {
      lateStore.close();
      await agent.stop();
      await late.close();
    }
  });
});

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const server = createServer().listen(0, "127.0.0.1", () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

/** Creates a client while the environment names `endpoint` (SDK clients read it when they are made). */
async function withEndpoint<T>(endpoint: string, make: () => Promise<T>): Promise<T> {
  const previous = process.env["AWS_ENDPOINT_URL_DYNAMODB"];
  process.env["AWS_ENDPOINT_URL_DYNAMODB"] = endpoint;
  try {
    return await make();
  } finally {
    process.env["AWS_ENDPOINT_URL_DYNAMODB"] = previous;
  }
}
