import { pino } from "pino";
import { connectReplica, type ReplicaClient } from "../../agent/replication/client.js";
import { type ReplicaServer, startReplicaServer } from "../../agent/replication/server.js";
import type { Replica } from "../../agent/store/replica.js";
import { createReplica, MiB, tempDir } from "../store/helpers.js";

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

/** A deterministic pattern: a block written with `seed` is recognisable when read back. */
export function pattern(length: number, seed: number): Buffer {
  const buffer = Buffer.allocUnsafe(length);
  for (let i = 0; i < length; i += 4) buffer.writeUInt32BE((seed * 2654435761 + i) >>> 0, i);
  return buffer;
}
