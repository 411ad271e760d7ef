import { spawn } from "node:child_process";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AgentProcess } from "../support/agent-process.js";
import { DurableWriter } from "../support/durable-writer.js";
import { run } from "../support/run.js";

const MiB = 1024 * 1024;
const WRITES = 1500;
/** Kill the agent once this many durable writes were acknowledged: well inside the load. */
const KILL_AFTER = 200;

describe("durability across kill -9", () => {
  let agent: AgentProcess;

  beforeAll(async () => {
    agent = await new AgentProcess().start();
  });
  afterAll(async () => {
    await agent.destroy();
  });

  it("every write acknowledged as durable (FUA) survives kill -9 during a write load, with metadata", async () => {
    const uri = await agent.createAttachedVolume("crash", 256 * MiB);
    await run("qemu-io", ["-f", "raw", uri, "-c", "write -P 0x5a 200M 1M", "-c", "flush"]);
    expect((await agent.api("POST", "/v1/volumes/crash/snapshots", { name: "before" })).status).toBe(201);

    // Background load: fio writes the upper half without flushes while qemu-io issues FUA writes.
    const load = spawn(
      "fio",
      [
        "--name=load",
        "--ioengine=nbd",
        `--uri=${uri}`,
        "--rw=randwrite",
        "--bs=64k",
        "--offset=128m",
        "--size=64m",
        "--iodepth=16",
        "--time_based",
        "--runtime=60",
      ],
      { stdio: "ignore" },
    );

    const writer = new DurableWriter(uri, WRITES);
    await writer.reached(KILL_AFTER);
    await agent.kill9();
    await writer.exited;
    load.kill("SIGKILL");
    expect(writer.acknowledged.length).toBeGreaterThanOrEqual(KILL_AFTER);
    expect(writer.acknowledged.length).toBeLessThan(WRITES);

    await agent.start();
    // The volume is still attached after the restart: its record survived, so its export is back.
    const volume = await agent.api<{ attachedNode: string | null }>("GET", "/v1/volumes/crash");
    expect(volume.body.attachedNode).not.toBeNull();
    const snapshots = await agent.api<{ snapshots: { name: string }[] }>(
      "GET",
      "/v1/volumes/crash/snapshots",
    );
    expect(snapshots.body.snapshots.map((s) => s.name)).toEqual(["before"]);

    await run("qemu-io", [
      "-f",
      "raw",
      agent.nbdUri("crash"),
      ...writer.verifyCommands(),
      "-c",
      "read -P 0x5a 200M 1M",
    ]);
  });
});
