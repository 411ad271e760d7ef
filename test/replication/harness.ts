import { pino } from "pino";
import { afterEach, beforeEach, expect } from "vitest";
import { connectReplica, type ReplicaClient } from "../../agent/replication/client.js";
import { type ReplicaServer, startReplicaServer } from "../../agent/replication/server/server.js";
import { FrameType } from "../../agent/replication/wire/protocol.js";
import type { Replica } from "../../agent/store/replica.js";
import { BLOCK, createReplica, MiB, tempDir } from "../store/helpers.js";
import type { RawPeer } from "./raw-peer.js";

export const SECRET = "cluster-secret-for-replication-tests";
export const VOLUME_SIZE = 64 * MiB;

/** Log lines kept in memory, so a test can check that a refusal was logged. */
export class CapturedLog {
  readonly lines: { level: number; msg: string; [key: string]: unknown }[] = [];
  readonly logger = pino({ level: "debug" }, { write: (line: string) => this.lines.push(JSON.parse(line)) });

  /** Messages logged at warn (40) or above. */
  warnings(): string[] {
    return this.lines.filter((line) => line.level >= 40).map((line) => line.msg);
  }
}

export interface ServerHarness {
  server: ReplicaServer;
  port: number;
  log: CapturedLog;
  /** The served replicas, by volume id. */
  replicas: Map<string, Replica>;
  /** The served replica of `volumeId`. */
  replica(volumeId?: string): Replica;
  connect(options?: { secret?: string; timeoutMs?: number }): Promise<ReplicaClient>;
  stop(): Promise<void>;
}

/** A replica server on 127.0.0.1 serving real replicas in a temp dir ({volumeId: epoch}). */
export async function startServer(
  volumes: Record<string, number> = { "vol-1": 1 },
  options: { handshakeTimeoutMs?: number } = {},
): Promise<ServerHarness> {
  const dir = await tempDir();
  const replicas = new Map<string, Replica>();
  const log = new CapturedLog();
  for (const [volumeId, epoch] of Object.entries(volumes)) {
    replicas.set(
      volumeId,
      await createReplica(`${dir.path}/${volumeId}`, VOLUME_SIZE, undefined, {
        volumeId,
        epoch,
        log: log.logger,
      }),
    );
  }
  const server = await startReplicaServer({
    host: "127.0.0.1",
    port: 0,
    secret: SECRET,
    resolve: (volumeId) => replicas.get(volumeId),
    log: log.logger,
    ...options,
  });
  const clients: ReplicaClient[] = [];
  return {
    server,
    port: server.address.port,
    log,
    replicas,
    replica(volumeId = "vol-1") {
      const replica = replicas.get(volumeId);
      if (replica === undefined) throw new Error(`no replica of ${volumeId}`);
      return replica;
    },
    async connect(connectOptions = {}) {
      const client = await connectReplica({
        host: "127.0.0.1",
        port: server.address.port,
        secret: connectOptions.secret ?? SECRET,
        log: log.logger,
        timeoutMs: connectOptions.timeoutMs ?? 30_000,
      });
      clients.push(client);
      return client;
    },
    async stop() {
      await Promise.all(clients.map((client) => client.close()));
      await server.close();
      await Promise.all([...replicas.values()].map((replica) => replica.close()));
      await dir.cleanup();
    },
  };
}

/** The server of the current test, as useServer hands it out (the hooks stop it). */
export type ServerFixture = Omit<ServerHarness, "stop">;

/**
 * Registers hooks that start a server (startServer's arguments) before each test of the suite and
 * stop it after. Hooks registered after this call run after the start and before the stop.
 */
export function useServer(
  volumes?: Record<string, number>,
  options?: { handshakeTimeoutMs?: number },
): ServerFixture {
  let current: ServerHarness | undefined;
  beforeEach(async () => {
    current = await startServer(volumes, options);
  });
  afterEach(async () => {
    await current?.stop();
    current = undefined;
  });
  const now = (): ServerHarness => {
    if (current === undefined) throw new Error("no server: useServer's beforeEach has not run");
    return current;
  };
  return {
    get server() {
      return now().server;
    },
    get port() {
      return now().port;
    },
    get log() {
      return now().log;
    },
    get replicas() {
      return now().replicas;
    },
    replica: (volumeId) => now().replica(volumeId),
    connect: (connectOptions) => now().connect(connectOptions),
  };
}

/** The server still serves a peer that holds the secret, and nothing was written to vol-1 before. */
export async function expectServingAndUntouched(h: ServerFixture): Promise<void> {
  expect(h.replica().allocatedBytes).toBe(0);
  const client = await h.connect();
  await client.write("vol-1", 1, 0, pattern(BLOCK, 9), { fua: false });
  expect(await client.read("vol-1", 0, BLOCK)).toEqual(pattern(BLOCK, 9));
}

/** The server answered `peer` with one ERROR frame carrying `status` and closed the connection. */
export async function expectClosedWith(peer: RawPeer, status: number): Promise<void> {
  const frames = await peer.framesUntilClosed();
  expect(frames.map((f) => [f.type, f.status])).toEqual([[FrameType.ERROR, status]]);
}

/** A deterministic pattern: a block written with `seed` is recognisable when read back. */
export function pattern(length: number, seed: number): Buffer {
  const buffer = Buffer.allocUnsafe(length);
  for (let i = 0; i < length; i += 4) buffer.writeUInt32BE((seed * 2654435761 + i) >>> 0, i);
  return buffer;
}
