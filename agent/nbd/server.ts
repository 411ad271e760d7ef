/**
 * The NBD server: TCP and/or Unix-socket listeners that hand each accepted socket to an
 * NbdConnection. One misbehaving client never affects the others or the process.
 */
import { lstat, unlink } from "node:fs/promises";
import { connect, createServer, type Server, type Socket } from "node:net";
import type { ExportRegistry } from "../exports.js";
import type { Logger } from "../log.js";
import { NbdConnection } from "./connection.js";

export interface NbdServerOptions {
  registry: ExportRegistry;
  /** TCP listener; port 0 picks a free port (see `NbdServer.tcpAddress` for the one bound). */
  tcp?: { host: string; port: number };
  /** Unix-socket listener; a stale socket file (no server behind it) at this path is replaced. */
  unixPath?: string;
  log: Logger;
}

export interface NbdServer {
  /** The bound TCP address, when a TCP listener was requested. */
  readonly tcpAddress: { host: string; port: number } | undefined;
  readonly unixPath: string | undefined;
  /** Open client connections. */
  connectionCount(): number;
  /**
   * Stops listening, lets every connection finish its in-flight requests (requests already
   * received but not started are refused with ESHUTDOWN), closes them, and resolves when every
   * connection has closed and released its export.
   */
  close(): Promise<void>;
}

/** Starts listening; rejects if a listener cannot be bound. At least one listener is required. */
export async function startNbdServer(options: NbdServerOptions): Promise<NbdServer> {
  const { registry, log } = options;
  if (options.tcp === undefined && options.unixPath === undefined) {
    throw new Error("startNbdServer needs a tcp address, a unixPath, or both");
  }
  const connections = new Set<NbdConnection>();
  const listeners: Server[] = [];
  let nextId = 1;
  let closing = false;

  const accept = (socket: Socket) => {
    if (closing) {
      socket.destroy();
      return;
    }
    const connection = new NbdConnection(socket, registry, log, nextId++);
    connections.add(connection);
    void connection.closed.then(() => connections.delete(connection));
    connection.start();
  };

  const listen = (server: Server, target: { port: number; host: string } | string) =>
    new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      const onListening = () => {
        server.off("error", reject);
        server.on("error", (err) => log.error({ err }, "nbd: listener error"));
        resolve();
      };
      if (typeof target === "string") server.listen(target, onListening);
      else server.listen(target.port, target.host, onListening);
    });

  let tcp: { host: string; port: number } | undefined;
  try {
    if (options.tcp !== undefined) {
      const server = createServer({ allowHalfOpen: true, noDelay: true }, accept);
      listeners.push(server);
      await listen(server, options.tcp);
      const address = server.address();
      if (address === null || typeof address === "string") throw new Error("TCP listener has no address");
      tcp = { host: address.address, port: address.port };
      log.info({ host: tcp.host, port: tcp.port }, "nbd: listening on TCP");
    }
    if (options.unixPath !== undefined) {
      await removeStaleSocket(options.unixPath);
      const server = createServer({ allowHalfOpen: true }, accept);
      listeners.push(server);
      await listen(server, options.unixPath);
      log.info({ path: options.unixPath }, "nbd: listening on Unix socket");
    }
  } catch (err) {
    for (const server of listeners) if (server.listening) server.close();
    throw err;
  }

  let closed: Promise<void> | undefined;
  return {
    tcpAddress: tcp,
    unixPath: options.unixPath,
    connectionCount: () => connections.size,
    close() {
      closed ??= (async () => {
        closing = true;
        const stopped = listeners.map(
          (server) =>
            new Promise<void>((resolve) => (server.listening ? server.close(() => resolve()) : resolve())),
        );
        const open = [...connections];
        for (const connection of open) connection.shutdown();
        await Promise.all([...stopped, ...open.map((c) => c.closed)]);
        log.info("nbd: server closed");
      })();
      return closed;
    },
  };
}

/** Removes a socket file nobody listens on; refuses to take over a live one. */
async function removeStaleSocket(path: string): Promise<void> {
  try {
    if (!(await lstat(path)).isSocket()) return; // listen() will fail with EADDRINUSE
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return;
    throw err;
  }
  const live = await new Promise<boolean>((resolve) => {
    const probe = connect(path);
    probe.once("connect", () => {
      probe.destroy();
      resolve(true);
    });
    probe.once("error", () => resolve(false));
  });
  if (live) throw Object.assign(new Error(`${path} is in use by a running server`), { code: "EADDRINUSE" });
  await unlink(path);
}
