/**
 * The replica server: a TCP listener on every agent through which coordinators on other nodes
 * read and write this node's replicas. Each accepted socket is a ServerSession; one misbehaving
 * peer never affects the others.
 */
import { createServer, type Socket } from "node:net";
import type { Logger } from "../../log.js";
import type { ReplicaAdmin } from "../replica-admin.js";
import { type ClusterSecret, HANDSHAKE_TIMEOUT_MS, secretBytes } from "../wire/auth.js";
import { servedEntry } from "./served-entries.js";
import type { ServedReplica, ServedReplicaEntry } from "./served-replica.js";
import { ServerSession } from "./session.js";

export interface ReplicaServerOptions {
  host: string;
  /** 0 picks a free port; see `address` for the one bound. */
  port: number;
  /** The cluster secret (≥ 16 bytes) every peer must prove it holds. */
  secret: ClusterSecret;
  /** The local replica of a volume, or undefined when this node holds none. Called per request. */
  resolve: (volumeId: string) => ServedReplica | undefined;
  /**
   * The node's replica management (agent/replica-host.ts), which peers drive with CREATE_REPLICA,
   * DELETE_REPLICA, SET_REBUILDING and LIST_REPLICAS. Without it those answer NOT_MANAGED (a
   * SET_REBUILDING then only sets the in-memory mark).
   */
  admin?: ReplicaAdmin;
  log: Logger;
  /** How long a peer has to authenticate (default HANDSHAKE_TIMEOUT_MS). */
  handshakeTimeoutMs?: number;
}

export interface ReplicaServer {
  readonly address: { host: string; port: number };
  connectionCount(): number;
  /**
   * Rebuild hook: marks the local replica of `volumeId` as being rebuilt (reads refused with
   * NOT_IN_SYNC, writes with its epoch still taken) or clears the mark. False when there is no
   * such replica.
   */
  setRebuilding(volumeId: string, rebuilding: boolean): boolean;
  /**
   * Stops listening; every connection finishes and answers the requests it is running, then
   * closes. Resolves when no request is running against any replica (they can then be closed).
   */
  close(): Promise<void>;
}

export async function startReplicaServer(options: ReplicaServerOptions): Promise<ReplicaServer> {
  const { log, resolve } = options;
  const secret = secretBytes(options.secret);
  // The fence is shared by every connection and by a local coordinator (see served-entries.ts).
  const entryFor = (volumeId: string): ServedReplicaEntry | undefined => {
    const replica = resolve(volumeId);
    return replica === undefined ? undefined : servedEntry(replica);
  };
  const context = {
    secret,
    entryFor,
    admin: options.admin,
    log,
    handshakeTimeoutMs: options.handshakeTimeoutMs ?? HANDSHAKE_TIMEOUT_MS,
  };
  const sessions = new Set<ServerSession>();
  let closing = false;

  const server = createServer({ allowHalfOpen: true, noDelay: true }, (socket: Socket) => {
    if (closing) {
      socket.destroy();
      return;
    }
    const session = new ServerSession(socket, context);
    sessions.add(session);
    void session.closed.then(() => sessions.delete(session));
    session.start();
  });
  await new Promise<void>((resolveListen, reject) => {
    server.once("error", reject);
    server.listen(options.port, options.host, () => {
      server.off("error", reject);
      server.on("error", (err) => log.error({ err }, "replication: listener error"));
      resolveListen();
    });
  });
  const bound = server.address();
  if (bound === null || typeof bound === "string") throw new Error("the replica listener has no address");
  const address = { host: bound.address, port: bound.port };
  log.info(address, "replication: replica server listening");

  let closed: Promise<void> | undefined;
  return {
    address,
    connectionCount: () => sessions.size,
    setRebuilding(volumeId, rebuilding) {
      const entry = entryFor(volumeId);
      if (entry === undefined) return false;
      entry.rebuilding = rebuilding;
      log.info({ volume: volumeId, rebuilding }, "replication: replica rebuild mark changed");
      return true;
    },
    close() {
      closed ??= (async () => {
        closing = true;
        const stopped = new Promise<void>((done) => server.close(() => done()));
        const open = [...sessions];
        for (const session of open) session.shutdown();
        await Promise.all([stopped, ...open.map((session) => session.closed)]);
        log.info("replication: replica server closed");
      })();
      return closed;
    },
  };
}
