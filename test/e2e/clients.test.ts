import { createHash, randomBytes } from "node:crypto";
import { createReadStream, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AgentProcess } from "../support/agent-process.js";
import { fioVerifiedRandomWrites } from "../support/fio.js";
import { run } from "../support/run.js";

const MiB = 1024 * 1024;

async function sha256(path: string): Promise<string> {
  const hash = createHash("sha256");
  for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer);
  return hash.digest("hex");
}

/** The agent's export, driven by the NBD clients our users have: libnbd's tools, qemu and fio. */
describe("external NBD clients against the agent's export", () => {
  let agent: AgentProcess;

  beforeAll(async () => {
    agent = await new AgentProcess().start();
  });
  afterAll(async () => {
    await agent.destroy();
  });

  it("nbdinfo lists only attached volumes and shows size and capabilities", async () => {
    await agent.api("POST", "/v1/volumes", { name: "detached", sizeBytes: 16 * MiB });
    const uri = await agent.createAttachedVolume("info", 64 * MiB);
    const list = await run("nbdinfo", ["--list", "--json", `nbd://${agent.endpoints.nbdAddress}`]);
    const names = (JSON.parse(list) as { exports: { "export-name": string }[] }).exports.map(
      (e) => e["export-name"],
    );
    expect(names).toContain("info");
    expect(names).not.toContain("detached");

    const info = JSON.parse(await run("nbdinfo", ["--json", "--no-content", uri])) as {
      exports: Record<string, unknown>[];
    };
    expect(info.exports[0]).toMatchObject({
      "export-size": 64 * MiB,
      can_flush: true,
      can_fua: true,
      can_trim: true,
      can_zero: true,
      can_multi_conn: true,
      is_read_only: false,
    });
    await expect(run("nbdinfo", [agent.nbdUri("detached")])).rejects.toThrow(/detached/);
  });

  it("qemu-io: patterns written at aligned and unaligned offsets read back; write -z reads zeros", async () => {
    const uri = await agent.createAttachedVolume("qemu", 64 * MiB);
    await run("qemu-io", [
      "-f",
      "raw",
      uri,
      "-c",
      "write -P 0xa1 0 1M",
      "-c",
      "write -P 0xb2 4095 9000",
      "-c",
      "aio_write -P 0xc3 8M 512k",
      "-c",
      "aio_write -P 0xd4 9M 512",
      "-c",
      "aio_flush",
      "-c",
      "write -f -P 0xe5 63M 1M",
      "-c",
      "write -z 512k 64k",
      "-c",
      "flush",
    ]);
    await run("qemu-io", [
      "-f",
      "raw",
      uri,
      "-c",
      "read -P 0xa1 0 4095",
      "-c",
      "read -P 0xb2 4095 9000",
      "-c",
      "read -P 0xa1 13095 511193",
      "-c",
      "read -P 0xa1 576k 448k",
      "-c",
      "read -P 0xc3 8M 512k",
      "-c",
      "read -P 0xd4 9M 512",
      "-c",
      "read -P 0x00 9437696 1M",
      "-c",
      "read -P 0xe5 63M 1M",
      "-c",
      "read -P 0x00 512k 64k",
    ]);
    // A pattern that was never written must fail the check: qemu-io verification is real.
    await expect(run("qemu-io", ["-f", "raw", uri, "-c", "read -P 0xa1 8M 4k"])).rejects.toThrow(/Pattern/);
  });

  it("nbdcopy: a random 256 MiB file copied in and out is byte-identical", async () => {
    const uri = await agent.createAttachedVolume("copy", 256 * MiB);
    const source = join(agent.root, "source.img");
    const back = join(agent.root, "back.img");
    const data = Buffer.allocUnsafe(256 * MiB);
    for (let offset = 0; offset < data.length; offset += 64 * MiB) randomBytes(64 * MiB).copy(data, offset);
    writeFileSync(source, data);
    await run("nbdcopy", ["--connections=4", "--requests=16", source, uri]);
    await run("nbdcopy", ["--connections=4", "--requests=16", uri, back]);
    expect(await sha256(back)).toBe(await sha256(source));
  });

  it("fio's nbd engine with --verify passes over TCP and over the Unix socket", async () => {
    await agent.createAttachedVolume("fio", 128 * MiB);
    const socket = agent.endpoints.nbdSocket!;
    for (const uri of [agent.nbdUri("fio"), `nbd+unix:///fio?socket=${socket}`]) {
      const job = await fioVerifiedRandomWrites(uri, "64m");
      expect(job.error).toBe(0);
      expect(job.read.io_bytes).toBe(64 * MiB); // the verify pass read everything back
    }
  });
});
