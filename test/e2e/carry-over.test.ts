import { randomUUID } from "node:crypto";
import { existsSync } from "node:fs";
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { pino } from "pino";
import { afterEach, describe, expect, it } from "vitest";
import { Pool } from "../../agent/pool.js";
import { ReplicaHost } from "../../agent/replica-host.js";
import type { Snapshot, Volume } from "../../core/model.js";
import { AgentProcess } from "../support/agent-process.js";
import { run } from "../support/run.js";

const MiB = 1024 * 1024;

/**
 * Data dirs from before every volume was a cluster volume hold single-replica volumes the state
 * store never heard of: a replica with a volume.json beside it. The agent carries each one into
 * the store at start-up, or refuses to start saying how, and never drops one silently.
 */
describe("node-local volumes of an older agent", () => {
  let agent: AgentProcess | undefined;
  afterEach(async () => agent?.destroy());

  /** What an older agent left on the drive: a replica with data and a snapshot, and its volume.json. */
  async function leaveNodeLocalVolume(dataDir: string, name: string, attached: boolean): Promise<string> {
    const pool = await Pool.open([{ path: join(dataDir, "drives", "d0") }]);
    const host = await ReplicaHost.open(pool, pino({ level: "silent" }));
    const volumeId = randomUUID();
    const replica = await host.create(volumeId, randomUUID(), 16 * MiB, 1);
    await replica.write(0, Buffer.alloc(MiB, 0x42), { fua: true });
    await replica.snapshot("before");
    await replica.write(0, Buffer.alloc(MiB, 0x43), { fua: true });
    const volume = {
      formatVersion: 1,
      id: volumeId,
      name,
      labels: { app: "pg" },
      createdAt: new Date().toISOString(),
      attached,
    };
    const dir = host.dirOf(volumeId)!;
    await writeFile(join(dir, "volume.json"), JSON.stringify(volume));
    await host.close();
    return dir;
  }

  it("carries them into the cluster state with their snapshots, labels and attachment", async () => {
    agent = new AgentProcess();
    const dir = await leaveNodeLocalVolume(agent.dataDir, "legacy", true);
    await agent.start();

    const volume = (await agent.api<Volume>("GET", "/v1/volumes/legacy")).body;
    expect(volume).toMatchObject({
      name: "legacy",
      sizeBytes: 16 * MiB,
      labels: { app: "pg" },
      attachedNode: "node-1",
    });
    expect(volume.replicas).toEqual([expect.objectContaining({ node: "node-1", state: "in-sync" })]);
    const { snapshots } = (await agent.api<{ snapshots: Snapshot[] }>("GET", "/v1/volumes/legacy/snapshots"))
      .body;
    expect(snapshots.map((snapshot) => snapshot.name)).toEqual(["before"]);
    expect(existsSync(join(dir, "volume.json"))).toBe(false);

    await run("qemu-io", ["-f", "raw", agent.nbdUri("legacy"), "-c", "read -P 0x43 0 1M"]);
    // Every operation of a cluster volume works on it, and it stays after a restart.
    expect(
      (await agent.api("POST", "/v1/volumes/legacy/snapshots/before/clone", { target: "copy" })).status,
    ).toBe(201);
    await agent.api("POST", "/v1/volumes/copy/attach");
    await run("qemu-io", ["-f", "raw", agent.nbdUri("copy"), "-c", "read -P 0x42 0 1M"]);
    await agent.stop();
    await agent.start();
    expect((await agent.api<Volume>("GET", "/v1/volumes/legacy")).body.attachedNode).toBe("node-1");
  });

  it("refuses to start when the cluster already has a volume of that name, saying how to resolve it", async () => {
    agent = new AgentProcess();
    await agent.start();
    expect((await agent.api("POST", "/v1/volumes", { name: "taken", sizeBytes: 16 * MiB })).status).toBe(201);
    await agent.stop();
    const dir = await leaveNodeLocalVolume(agent.dataDir, "taken", false);
    await expect(agent.start()).rejects.toThrow(
      /cannot carry node-local volume "taken" .* the cluster already has a volume of that name/,
    );
    // Nothing was dropped: the node-local volume is still on the drive, untouched.
    expect(existsSync(join(dir, "volume.json"))).toBe(true);
  });
});
