import { spawn } from "node:child_process";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AgentProcess } from "../support/agent-process.js";
import { run } from "../support/run.js";

const MiB = 1024 * 1024;
const WRITE_SIZE = 64 * 1024;
const WRITES = 1500;
/** Kill the agent once this many durable writes were acknowledged: well inside the load. */
const KILL_AFTER = 200;

/** The byte pattern of write i: never 0, so a lost write cannot pass as zeros. */
const patternOf = (i: number) => (i % 255) + 1;

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

    const commands = Array.from({ length: WRITES }, (_, i) => [
      "-c",
      `write -f -P ${patternOf(i)} ${i * WRITE_SIZE} ${WRITE_SIZE}`,
    ]).flat();
    const writer = spawn("qemu-io", ["-f", "raw", uri, ...commands], { stdio: ["ignore", "pipe", "pipe"] });
    // Listened for from the start: qemu-io may exit before the kill has been awaited.
    const writerExited = new Promise((resolve) => writer.once("exit", resolve));
    const acknowledged: number[] = [];
    let pending = "";
    const killed = new Promise<void>((resolve) => {
      writer.stdout.on("data", (chunk: Buffer) => {
        pending += chunk.toString();
        const lines = pending.split("\n");
        pending = lines.pop()!;
        for (const line of lines) {
          const match = /^wrote \d+\/\d+ bytes at offset (\d+)/.exec(line);
          if (match) acknowledged.push(Number(match[1]) / WRITE_SIZE);
        }
        if (acknowledged.length >= KILL_AFTER) resolve();
      });
    });
    await killed;
    await agent.kill9();
    await writerExited;
    load.kill("SIGKILL");
    expect(acknowledged.length).toBeGreaterThanOrEqual(KILL_AFTER);
    expect(acknowledged.length).toBeLessThan(WRITES);

    await agent.start();
    // The volume is still attached after the restart: its record survived, so its export is back.
    const volume = await agent.api<{ attachedNode: string | null }>("GET", "/v1/volumes/crash");
    expect(volume.body.attachedNode).not.toBeNull();
    const snapshots = await agent.api<{ snapshots: { name: string }[] }>(
      "GET",
      "/v1/volumes/crash/snapshots",
    );
    expect(snapshots.body.snapshots.map((s) => s.name)).toEqual(["before"]);

    const reads = acknowledged.flatMap((i) => [
      "-c",
      `read -P ${patternOf(i)} ${i * WRITE_SIZE} ${WRITE_SIZE}`,
    ]);
    await run("qemu-io", ["-f", "raw", agent.nbdUri("crash"), ...reads, "-c", "read -P 0x5a 200M 1M"]);
  });
});
