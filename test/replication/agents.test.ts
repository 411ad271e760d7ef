/**
 * Two real agents started with the cluster secret: a client holding the secret (as agent A's
 * coordinator would) manages and uses a replica on agent B over the replication protocol, and the
 * replica outlives B's kill -9.
 */
import { existsSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { connectReplica, type ReplicaClient } from "../../agent/replication/client.js";
import { ReplicaAuthError, ReplicaRefusedError, StaleEpochError } from "../../agent/replication/errors.js";
import { Status } from "../../agent/replication/wire/protocol.js";
import { BLOCK, MiB } from "../store/helpers.js";
import { AgentProcess } from "../support/agent-process.js";
import { CapturedLog, pattern } from "./harness.js";

const SECRET = "a-cluster-secret-shared-by-both-agents";
const CLUSTER_ENV = { STRATA_CLUSTER_SECRET: SECRET };
const LISTEN_ANY_PORT = ["--replication-listen", "127.0.0.1:0"];
const SIZE = 64 * MiB;
const log = new CapturedLog();

function clusterAgent(): AgentProcess {
  return new AgentProcess(undefined, LISTEN_ANY_PORT, CLUSTER_ENV);
}

function connectTo(agent: AgentProcess, secret = SECRET): Promise<ReplicaClient> {
  const address = agent.endpoints.replicationAddress;
  if (address === null) throw new Error("the agent serves no replicas");
  const [host, port] = address.split(":");
  return connectReplica({ host: host!, port: Number(port), secret, log: log.logger, timeoutMs: 30_000 });
}

describe("agents serving their replicas over the replication protocol", () => {
  let agentA: AgentProcess;
  let agentB: AgentProcess;
  const clients: ReplicaClient[] = [];
  const connect = async (agent: AgentProcess, secret?: string) => {
    const client = await connectTo(agent, secret);
    clients.push(client);
    return client;
  };

  beforeAll(async () => {
    [agentA, agentB] = await Promise.all([clusterAgent().start(), clusterAgent().start()]);
  });
  afterAll(async () => {
    await Promise.all(clients.map((client) => client.close()));
    await Promise.all([agentA?.destroy(), agentB?.destroy()]);
  });

  it("records the real bound address (port 0 asked) and refuses a peer without the secret", async () => {
    for (const agent of [agentA, agentB])
      expect(agent.endpoints.replicationAddress).toMatch(/^127\.0\.0\.1:[1-9]\d*$/);
    expect(agentA.endpoints.replicationAddress).not.toBe(agentB.endpoints.replicationAddress);
    await expect(connectTo(agentB, "not-the-cluster-secret-at-all")).rejects.toBeInstanceOf(ReplicaAuthError);
    expect(await (await connect(agentA)).listReplicas()).toEqual([]);
  });

  it("creates a replica on B, writes and reads it with its epoch, rebuild-marks, lists, maps and deletes it; survives kill -9", async () => {
    let b = await connect(agentB);
    const spec = { volumeId: "vol-remote", replicaId: "rep-on-b", sizeBytes: SIZE, epoch: 5 };
    expect(await b.createReplica(spec)).toEqual({ ...spec, allocatedBytes: 0, rebuilding: false });
    expect(existsSync(join(agentB.dataDir, "drives", "d0", "volumes", "vol-remote"))).toBe(true);
    // Idempotent: a retried create answers the same replica.
    expect((await b.createReplica(spec)).replicaId).toBe("rep-on-b");

    await b.write("vol-remote", 5, 0, pattern(2 * BLOCK, 1), { fua: true });
    await b.write("vol-remote", 5, 10 * BLOCK, pattern(BLOCK, 2), { fua: true });
    await expect(b.write("vol-remote", 4, 0, pattern(BLOCK, 3), { fua: false })).rejects.toBeInstanceOf(
      StaleEpochError,
    );
    expect(await b.read("vol-remote", 0, 2 * BLOCK, { epoch: 5 })).toEqual(pattern(2 * BLOCK, 1));

    // A rebuild target: takes writes with its epoch, refuses reads until the mark is cleared.
    await b.setRebuilding("vol-remote", 5, true);
    await b.write("vol-remote", 5, 20 * BLOCK, pattern(BLOCK, 4), { fua: true });
    const refused = await b.read("vol-remote", 0, BLOCK, { epoch: 5 }).catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(ReplicaRefusedError);
    expect((refused as ReplicaRefusedError).status).toBe(Status.NOT_IN_SYNC);
    expect(await b.listReplicas("vol-remote")).toEqual([
      { ...spec, allocatedBytes: 4 * BLOCK, rebuilding: true },
    ]);
    await b.setRebuilding("vol-remote", 5, false);
    expect(await b.allocatedRuns("vol-remote", { epoch: 5 })).toEqual([
      { offset: 0, length: 2 * BLOCK },
      { offset: 10 * BLOCK, length: BLOCK },
      { offset: 20 * BLOCK, length: BLOCK },
    ]);
    await b.setEpoch("vol-remote", 5, 6);
    // A second replica, left marked as a rebuild target across the crash.
    await b.createReplica({ volumeId: "vol-target", replicaId: "rep-t", sizeBytes: SIZE, epoch: 6 });
    await b.setRebuilding("vol-target", 6, true);

    await agentB.kill9();
    await agentB.start();
    b = await connect(agentB);
    expect(await b.listReplicas()).toEqual(
      expect.arrayContaining([
        { ...spec, epoch: 6, allocatedBytes: 4 * BLOCK, rebuilding: false },
        {
          volumeId: "vol-target",
          replicaId: "rep-t",
          sizeBytes: SIZE,
          epoch: 6,
          allocatedBytes: 0,
          rebuilding: true,
        },
      ]),
    );
    expect(await b.read("vol-remote", 10 * BLOCK, BLOCK, { epoch: 6 })).toEqual(pattern(BLOCK, 2));
    await expect(b.write("vol-remote", 5, 0, pattern(BLOCK, 5), { fua: false })).rejects.toBeInstanceOf(
      StaleEpochError,
    );
    expect(await b.read("vol-target", 0, BLOCK, { epoch: 6 }).catch((e: unknown) => e)).toMatchObject({
      status: Status.NOT_IN_SYNC,
    });

    expect(await b.deleteReplica("vol-remote", "rep-on-b")).toBe(true);
    expect(await b.deleteReplica("vol-remote", "rep-on-b")).toBe(false);
    expect(existsSync(join(agentB.dataDir, "drives", "d0", "volumes", "vol-remote"))).toBe(false);
    expect((await b.listReplicas()).map((r) => r.volumeId)).toEqual(["vol-target"]);
  });
});

describe("the agent's replica server configuration", () => {
  it("refuses to start with a short secret or --replication-listen without one; serves nothing without either", async () => {
    const short = new AgentProcess(undefined, LISTEN_ANY_PORT, { STRATA_CLUSTER_SECRET: "too-short" });
    await expect(short.start()).rejects.toThrow(/STRATA_CLUSTER_SECRET must be at least 16 bytes/);
    await short.destroy();
    const noSecret = new AgentProcess(undefined, LISTEN_ANY_PORT);
    await expect(noSecret.start()).rejects.toThrow(/--replication-listen needs STRATA_CLUSTER_SECRET/);
    await noSecret.destroy();
    const standalone = await new AgentProcess().start();
    try {
      expect(standalone.endpoints.replicationAddress).toBeNull();
    } finally {
      await standalone.destroy();
    }
  });
});
