/**
 * One client connection: owns the socket, the receive queue, the export lease and the connection
 * gauge, and drives the handshake and then the transmission phase. The lease is released exactly
 * once, after the socket has closed and no request is still running against the device.
 */
import type { Socket } from "node:net";
import type { ExportLease, ExportRegistry } from "../exports.js";
import type { Logger } from "../log.js";
import { nbdConnections } from "../metrics.js";
import { ByteQueue } from "../wire/byte-queue.js";
import { type HandshakeIo, negotiate } from "./handshake.js";
import { Transmission } from "./transmission.js";

/** How long a closing socket may wait for the client to close its side before it is destroyed. */
const CLOSE_GRACE_MS = 2000;

class ConnectionClosedError extends Error {
  constructor() {
    super("connection closed during the handshake");
  }
}

export class NbdConnection {
  private readonly queue = new ByteQueue();
  private phase: "handshake" | "transmission" | "closing" | "closed" = "handshake";
  /** A handshake read waiting for bytes: resolved when `queue.length >= need`. */
  private waiter: { need: number; resolve: () => void; reject: (e: Error) => void } | undefined;
  private inputEnded = false;
  private lease: ExportLease | undefined;
  private transmission: Transmission | undefined;
  private finalized = false;
  private readonly log: Logger;
  private readonly closedPromise: Promise<void>;
  private resolveClosed!: () => void;

  constructor(
    private readonly socket: Socket,
    private readonly registry: ExportRegistry,
    log: Logger,
    readonly id: number,
  ) {
    this.log = log.child({ conn: id, remote: describePeer(socket) });
    this.closedPromise = new Promise((resolve) => {
      this.resolveClosed = resolve;
    });
  }

  /** Resolves once the socket has closed and the lease (if any) is released. */
  get closed(): Promise<void> {
    return this.closedPromise;
  }

  start(): void {
    nbdConnections.inc();
    this.log.info("nbd: client connected");
    const socket = this.socket;
    socket.on("data", (chunk: Buffer) => this.onData(chunk));
    socket.on("end", () => this.onEnd());
    socket.on("error", (err) => this.log.info({ err: err.message }, "nbd: socket error"));
    socket.on("close", () => this.onClose());
    this.runHandshake().catch((err: unknown) => {
      this.log.error({ err }, "nbd: handshake crashed");
      this.hardClose();
    });
  }

  /** Server shutdown: finish in-flight requests, refuse buffered ones, then close. */
  shutdown(): void {
    if (this.phase === "transmission") this.transmission!.shutdown();
    else if (this.phase === "handshake") this.gracefulClose();
  }

  private onData(chunk: Buffer): void {
    if (this.phase === "closing" || this.phase === "closed") return;
    this.queue.push(chunk);
    if (this.phase === "transmission") this.transmission!.pump();
    else this.wake();
  }

  private onEnd(): void {
    this.inputEnded = true;
    if (this.phase === "transmission") this.transmission!.endOfInput();
    else this.wake();
  }

  private onClose(): void {
    this.phase = "closed";
    this.inputEnded = true;
    this.wake();
    this.maybeFinalize();
  }

  // ---- handshake -------------------------------------------------------------------------------

  private async runHandshake(): Promise<void> {
    let result: Awaited<ReturnType<typeof negotiate>>;
    try {
      result = await negotiate(this.handshakeIo(), this.registry, this.log);
    } catch (err) {
      if (err instanceof ConnectionClosedError) {
        if (this.phase !== "closed") this.log.info("nbd: client left during the handshake");
        this.gracefulClose();
        return;
      }
      throw err;
    }
    if (result.kind === "close") {
      if (result.reason !== undefined) {
        this.log.warn({ reason: result.reason }, "nbd: handshake refused, closing");
        this.hardClose();
      } else {
        this.log.info("nbd: client aborted the handshake");
        this.gracefulClose();
      }
      return;
    }
    this.lease = result.lease;
    if (this.phase !== "handshake") {
      // The socket went away (or the server shut down) while the export was being opened.
      this.maybeFinalize();
      return;
    }
    this.phase = "transmission";
    this.log.info({ export: result.lease.name }, "nbd: transmission started");
    this.transmission = new Transmission(this.socket, this.queue, result.lease, this.log, {
      protocolError: (reason, detail) => this.log.warn({ reason, ...detail }, "nbd: protocol error, closing"),
      drained: () => this.onDrained(),
    });
    if (this.inputEnded) this.transmission.endOfInput();
    else this.transmission.pump();
  }

  private handshakeIo(): HandshakeIo {
    return {
      read: async (n) => {
        await this.waitFor(n);
        return this.queue.take(n);
      },
      discard: async (n) => {
        let left = n;
        while (left > 0) {
          await this.waitFor(1);
          left -= this.queue.skip(left);
        }
      },
      write: (data) => {
        if (!this.socket.destroyed && this.socket.writable) this.socket.write(data);
      },
    };
  }

  private waitFor(need: number): Promise<void> {
    if (this.queue.length >= need) return Promise.resolve();
    if (this.inputEnded || this.phase !== "handshake") return Promise.reject(new ConnectionClosedError());
    return new Promise((resolve, reject) => {
      this.waiter = { need, resolve, reject };
    });
  }

  private wake(): void {
    const waiter = this.waiter;
    if (waiter === undefined) return;
    if (this.queue.length >= waiter.need) {
      this.waiter = undefined;
      waiter.resolve();
    } else if (this.inputEnded || this.phase !== "handshake") {
      this.waiter = undefined;
      waiter.reject(new ConnectionClosedError());
    }
  }

  // ---- closing ---------------------------------------------------------------------------------

  /** Transmission stopped and nothing is in flight: send the last replies and close. */
  private onDrained(): void {
    if (this.phase !== "transmission") {
      this.maybeFinalize();
      return;
    }
    this.transmission!.flushReplies();
    this.gracefulClose();
  }

  /** Half-close after everything written so far, destroying the socket if the peer lingers. */
  private gracefulClose(): void {
    if (this.phase === "closing" || this.phase === "closed") return;
    this.phase = "closing";
    this.wake();
    this.socket.end();
    // Keep reading (and dropping) input so the client's FIN is seen and the socket can close.
    this.socket.resume();
    setTimeout(() => this.socket.destroy(), CLOSE_GRACE_MS).unref();
  }

  /** Drop the connection now (protocol violation). */
  private hardClose(): void {
    if (this.phase !== "closed") this.phase = "closing";
    this.wake();
    this.socket.destroy();
  }

  private maybeFinalize(): void {
    if (this.finalized || this.phase !== "closed") return;
    if (this.transmission !== undefined && this.transmission.busy > 0) return; // released when drained
    this.finalized = true;
    this.lease?.release();
    nbdConnections.dec();
    this.log.info(
      { export: this.lease?.name, requests: this.transmission?.requests ?? 0 },
      "nbd: client disconnected",
    );
    this.resolveClosed();
  }
}

function describePeer(socket: Socket): string {
  if (socket.remoteAddress !== undefined) return `${socket.remoteAddress}:${socket.remotePort}`;
  return "unix";
}
