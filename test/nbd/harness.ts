import { execFile } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { connect, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pino } from "pino";
import type { ExportLease, ExportRegistry } from "../../agent/exports.js";
import { type NbdServer, startNbdServer } from "../../agent/nbd/server.js";
import { MemoryDevice } from "../support/memory-device.js";

export const quietLog = pino({ level: process.env.STRATA_TEST_LOG ?? "silent" });

/** An ExportRegistry over memory devices that counts leases, and catches double releases. */
export class TestRegistry implements ExportRegistry {
  opens = 0;
  releases = 0;
  doubleReleases = 0;
  readonly devices = new Map<string, MemoryDevice>();

  add(name: string, device: MemoryDevice): MemoryDevice {
    this.devices.set(name, device);
    return device;
  }

  names(): string[] {
    return [...this.devices.keys()];
  }

  open(name: string): ExportLease | undefined {
    const device = this.devices.get(name);
    if (device === undefined) return undefined;
    this.opens++;
    let released = false;
    return {
      name,
      description: `memory volume ${name}`,
      device,
      release: () => {
        if (released) this.doubleReleases++;
        released = true;
        this.releases++;
      },
    };
  }
}

export interface Harness {
  registry: TestRegistry;
  server: NbdServer;
  port: number;
  socketPath: string;
  uri(name: string): string;
  unixUri(name: string): string;
  stop(): Promise<void>;
  /** Resolves once every lease has been released (connections close asynchronously). */
  settled(): Promise<void>;
}

export async function startHarness(exports: Record<string, number>): Promise<Harness> {
  const registry = new TestRegistry();
  for (const [name, size] of Object.entries(exports)) registry.add(name, new MemoryDevice(size));
  const dir = await mkdtemp(join(tmpdir(), "strata-nbd-"));
  const socketPath = join(dir, "nbd.sock");
  const server = await startNbdServer({
    registry,
    tcp: { host: "127.0.0.1", port: 0 },
    unixPath: socketPath,
    log: quietLog,
  });
  const port = server.tcpAddress!.port;
  return {
    registry,
    server,
    port,
    socketPath,
    uri: (name) => `nbd://127.0.0.1:${port}/${name}`,
    unixUri: (name) => `nbd+unix:///${name}?socket=${socketPath}`,
    async stop() {
      await server.close();
      await rm(dir, { recursive: true, force: true });
    },
    async settled() {
      while (server.connectionCount() > 0 || registry.opens !== registry.releases) {
        await new Promise((resolve) => setTimeout(resolve, 10));
      }
    },
  };
}

export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs an external client; never rejects (the exit code is in the result). */
export function run(command: string, args: string[], timeoutMs = 100_000): Promise<RunResult> {
  return new Promise((resolve) => {
    execFile(
      command,
      args,
      { timeout: timeoutMs, maxBuffer: 64 * 1024 * 1024, encoding: "utf8" },
      (error, stdout, stderr) => {
        const code = error === null ? 0 : typeof error.code === "number" ? error.code : 1;
        resolve({ code, stdout, stderr });
      },
    );
  });
}

/** Runs a command and fails with its output when it exits non-zero. */
export async function runOk(command: string, args: string[], timeoutMs?: number): Promise<string> {
  const result = await run(command, args, timeoutMs);
  if (result.code !== 0) {
    throw new Error(`${command} ${args.join(" ")} exited ${result.code}\n${result.stdout}\n${result.stderr}`);
  }
  return result.stdout;
}

/** A raw protocol client: write bytes, read exact byte counts, observe the close. */
export class RawClient {
  private buffered = Buffer.alloc(0);
  private ended = false;
  private waiters: (() => void)[] = [];
  readonly closed: Promise<void>;

  private constructor(readonly socket: Socket) {
    socket.on("data", (chunk: Buffer) => {
      this.buffered = Buffer.concat([this.buffered, chunk]);
      this.notify();
    });
    socket.on("error", () => {});
    this.closed = new Promise((resolve) => {
      socket.on("close", () => {
        this.ended = true;
        this.notify();
        resolve();
      });
    });
    socket.on("end", () => {
      this.ended = true;
      this.notify();
    });
  }

  static connect(port: number): Promise<RawClient> {
    return new Promise((resolve, reject) => {
      const socket = connect(port, "127.0.0.1", () => resolve(new RawClient(socket)));
      socket.once("error", reject);
    });
  }

  write(data: Buffer): void {
    this.socket.write(data);
  }

  /** Exactly n bytes; rejects if the server closes first. */
  async read(n: number): Promise<Buffer> {
    while (this.buffered.length < n) {
      if (this.ended) throw new Error(`connection closed with ${this.buffered.length}/${n} bytes`);
      await new Promise<void>((resolve) => this.waiters.push(resolve));
    }
    const out = this.buffered.subarray(0, n);
    this.buffered = this.buffered.subarray(n);
    return out;
  }

  /** Resolves when the server has closed the connection; returns the bytes it sent before that. */
  async readUntilClosed(): Promise<Buffer> {
    await this.closed;
    const rest = this.buffered;
    this.buffered = Buffer.alloc(0);
    return rest;
  }

  end(): void {
    this.socket.end();
  }

  destroy(): void {
    this.socket.destroy();
  }

  private notify(): void {
    const waiters = this.waiters;
    this.waiters = [];
    for (const w of waiters) w();
  }
}

export { MemoryDevice };
