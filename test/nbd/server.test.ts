import { existsSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { connect } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { startNbdServer } from "../../agent/nbd/server.js";
import { MAX_IN_FLIGHT } from "../../agent/nbd/transmission.js";
import { MemoryDevice, quietLog, RawClient, runOk, startHarness, TestRegistry } from "./harness.js";
import { CMD, connectTransmission, ERR, greet, readReply, request } from "./wire.js";

function refused(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(port, "127.0.0.1");
    socket.once("connect", () => {
      socket.destroy();
      resolve(false);
    });
    socket.once("error", () => resolve(true));
  });
}

describe("NBD server lifecycle", () => {
  it("binds port 0 and a Unix socket, and reports the real addresses", async () => {
    const h = await startHarness({ disk: 1024 * 1024 });
    try {
      expect(h.server.tcpAddress).toEqual({ host: "127.0.0.1", port: h.port });
      expect(h.port).toBeGreaterThan(0);
      expect(h.server.unixPath).toBe(h.socketPath);
      expect(existsSync(h.socketPath)).toBe(true);
      const out = await runOk("nbdinfo", ["--size", h.unixUri("disk")]);
      expect(out.trim()).toBe(String(1024 * 1024));
    } finally {
      await h.stop();
    }
    expect(await refused(h.port)).toBe(true);
    expect(existsSync(h.socketPath)).toBe(false);
  });

  it("replaces a stale Unix socket file but refuses to take over a live one", async () => {
    const dir = await mkdtemp(join(tmpdir(), "strata-nbd-stale-"));
    const path = join(dir, "stale.sock");
    // A socket file whose owner is gone (bound, never unlinked).
    await runOk("python3", [
      "-c",
      `import socket; socket.socket(socket.AF_UNIX).bind(${JSON.stringify(path)})`,
    ]);
    expect(existsSync(path)).toBe(true);
    const registry = new TestRegistry();
    registry.add("disk", new MemoryDevice(4096));
    const server = await startNbdServer({ registry, unixPath: path, log: quietLog });
    try {
      expect(server.tcpAddress).toBeUndefined();
      expect((await runOk("nbdinfo", ["--size", `nbd+unix:///disk?socket=${path}`])).trim()).toBe("4096");
      await expect(startNbdServer({ registry, unixPath: path, log: quietLog })).rejects.toMatchObject({
        code: "EADDRINUSE",
      });
    } finally {
      await server.close();
      await rm(dir, { recursive: true, force: true });
    }
  });

  it("close() finishes in-flight requests, refuses queued ones with ESHUTDOWN, and releases every lease", async () => {
    const h = await startHarness({ disk: 1024 * 1024 });
    const device = h.registry.devices.get("disk")!;
    const idle = await RawClient.connect(h.port); // still in the handshake when the server closes
    await greet(idle);
    const { client } = await connectTransmission(h.port, "disk");
    const open = device.hold(0);
    const total = MAX_IN_FLIGHT + 44;
    const parts: Buffer[] = [];
    for (let i = 0; i < total; i++) parts.push(request(CMD.READ, BigInt(i), 0, 512));
    client.write(Buffer.concat(parts));
    while (device.calls.read < MAX_IN_FLIGHT) await new Promise((r) => setTimeout(r, 5));

    const closed = h.server.close();
    const errors = new Map<number, number>();
    for (let i = 0; i < total - MAX_IN_FLIGHT; i++) {
      const reply = await readReply(client);
      errors.set(reply.error, (errors.get(reply.error) ?? 0) + 1);
    }
    expect(errors).toEqual(new Map([[ERR.ESHUTDOWN, total - MAX_IN_FLIGHT]]));
    open();
    for (let i = 0; i < MAX_IN_FLIGHT; i++) {
      expect((await readReply(client)).error).toBe(0);
      await client.read(512);
    }
    expect((await client.readUntilClosed()).length).toBe(0);
    await idle.closed;
    await closed;
    expect(h.registry.opens).toBe(1);
    expect(h.registry.releases).toBe(1);
    expect(h.server.connectionCount()).toBe(0);
    expect(await refused(h.port)).toBe(true);
    await h.stop();
  });

  it("keeps serving other clients while one misbehaves", async () => {
    const h = await startHarness({ disk: 1024 * 1024 });
    try {
      const good = (await connectTransmission(h.port, "disk")).client;
      const bad = (await connectTransmission(h.port, "disk")).client;
      bad.write(Buffer.from("garbage garbage garbage garbage!"));
      await bad.readUntilClosed();
      good.write(request(CMD.WRITE, 1n, 0, 4, 0, Buffer.from("ok!!")));
      expect(await readReply(good)).toEqual({ error: 0, cookie: 1n });
      expect(h.registry.devices.get("disk")!.data.subarray(0, 4).toString()).toBe("ok!!");
      good.write(request(CMD.DISC, 0n, 0, 0));
      await good.readUntilClosed();
      await h.settled();
      expect(h.registry.releases).toBe(2);
    } finally {
      await h.stop();
    }
  });
});
