import { type ChildProcess, spawn } from "node:child_process";
import { once } from "node:events";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { connectReplica, type ReplicaClient } from "../../agent/replication/client.js";
import { ReplicaUnavailableError } from "../../agent/replication/errors.js";
import { BLOCK, MiB, tempDir } from "../store/helpers.js";
import { CapturedLog, pattern, SECRET } from "./harness.js";

/** A replica server process we can freeze and kill. */
class ServerProcess {
  private constructor(
    private readonly child: ChildProcess,
    readonly port: number,
  ) {}

  static async start(dir: string): Promise<ServerProcess> {
    const child = spawn(
      process.execPath,
      ["--import", "tsx", join(import.meta.dirname, "server-process.ts"), dir, SECRET],
      {
        stdio: ["ignore", "pipe", "inherit"],
      },
    );
    let output = "";
    for await (const chunk of child.stdout!) {
      output += String(chunk);
      if (output.includes("\n")) break;
    }
    const { port } = JSON.parse(output) as { port: number };
    return new ServerProcess(child, port);
  }

  freeze(): void {
    this.child.kill("SIGSTOP");
  }

  thaw(): void {
    this.child.kill("SIGCONT");
  }

  async kill(): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    const exited = once(this.child, "exit");
    this.child.kill("SIGKILL");
    await exited;
  }
}

/** Lets the client hand everything queued to the socket (its writer flushes on setImmediate). */
const sent = () => new Promise((resolve) => setImmediate(() => setImmediate(resolve)));

describe("replica client failures", () => {
  let dir: Awaited<ReturnType<typeof tempDir>>;
  let server: ServerProcess;
  const log = new CapturedLog();

  beforeEach(async () => {
    dir = await tempDir();
    server = await ServerProcess.start(join(dir.path, "replica"));
  });
  afterEach(async () => {
    await server.kill();
    await dir.cleanup();
  });

  const connect = (timeoutMs = 60_000) =>
    connectReplica({ host: "127.0.0.1", port: server.port, secret: SECRET, log: log.logger, timeoutMs });

  async function rejection(promise: Promise<unknown>): Promise<unknown> {
    return promise.then(
      () => "resolved",
      (error: unknown) => error,
    );
  }

  it("rejects every in-flight request with ReplicaUnavailableError when the server dies", async () => {
    const client = await connect();
    await client.write("vol-1", 1, 0, pattern(BLOCK, 1), { fua: true });
    server.freeze();
    const inFlight: Promise<unknown>[] = [
      ...Array.from({ length: 20 }, (_, i) =>
        client.write("vol-1", 1, i * MiB, pattern(MiB, i), { fua: false }),
      ),
      client.read("vol-1", 0, BLOCK),
      client.flush("vol-1", 1),
      client.getState("vol-1"),
    ];
    await sent();
    expect(client.inFlight).toBe(inFlight.length);
    const outcomes = inFlight.map(rejection);
    await server.kill();
    for (const error of await Promise.all(outcomes)) {
      expect(error).toBeInstanceOf(ReplicaUnavailableError);
      expect(error).toMatchObject({ reason: "connection-lost" });
    }
    expect(await client.disconnected).toBeInstanceOf(ReplicaUnavailableError);
    // Later requests fail at once the same way.
    expect(await rejection(client.read("vol-1", 0, BLOCK))).toBeInstanceOf(ReplicaUnavailableError);
    expect(client.inFlight).toBe(0);
  });

  it("fails requests (and the connection) when the replica does not answer in time", async () => {
    const client: ReplicaClient = await connect(500);
    await client.write("vol-1", 1, 0, pattern(BLOCK, 1), { fua: true });
    server.freeze();
    const stuck = [client.write("vol-1", 1, 0, pattern(BLOCK, 2), { fua: true }), client.getState("vol-1")];
    for (const error of await Promise.all(stuck.map(rejection))) {
      expect(error).toBeInstanceOf(ReplicaUnavailableError);
      expect(error).toMatchObject({ reason: "timeout" });
    }
    expect(await client.disconnected).toMatchObject({ reason: "timeout" });
    server.thaw();
    // A new connection works once the replica answers again.
    const again = await connect();
    expect((await again.getState("vol-1")).epoch).toBe(1);
    await again.close();
  });

  it("fails to connect with ReplicaUnavailableError when nothing listens", async () => {
    await server.kill();
    const error = await rejection(connect());
    expect(error).toBeInstanceOf(ReplicaUnavailableError);
    expect(error).toMatchObject({ reason: "connect-failed" });
  });

  it("closes gracefully: requests in flight are answered, later ones refused", async () => {
    const client = await connect();
    const writes = Array.from({ length: 32 }, (_, i) =>
      client.write("vol-1", 1, i * BLOCK, pattern(BLOCK, i), { fua: false }),
    );
    const closed = client.close();
    await Promise.all(writes);
    await closed;
    expect(await rejection(client.flush("vol-1", 1))).toMatchObject({ reason: "closed" });
    const again = await connect();
    for (let i = 0; i < 32; i++)
      expect(await again.read("vol-1", i * BLOCK, BLOCK)).toEqual(pattern(BLOCK, i));
    await again.close();
  });
});
