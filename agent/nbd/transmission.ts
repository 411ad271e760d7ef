/**
 * The transmission phase of one connection: parses requests from the byte stream, runs them
 * against the export's BlockDevice concurrently, and answers each with a simple reply as soon as
 * it finishes (replies may go out of order; the cookie ties them to requests).
 */
import type { Socket } from "node:net";
import { BlockIoError, toBlockIoError } from "../block-device.js";
import type { ExportLease } from "../exports.js";
import { borrowIoBuffer, returnIoBuffer } from "../io-buffers.js";
import type { Logger } from "../log.js";
import { type IoOp, observeIo } from "../metrics.js";
import type { ByteQueue } from "../wire/byte-queue.js";
import { SocketWriter } from "../wire/socket-writer.js";
import {
  CMD_DISC,
  CMD_FLAG_FUA,
  CMD_FLAG_NO_HOLE,
  CMD_FLUSH,
  CMD_READ,
  CMD_TRIM,
  CMD_WRITE,
  CMD_WRITE_ZEROES,
  encodeSimpleReply,
  MAX_PAYLOAD,
  NBD_EINVAL,
  NBD_ENOSPC,
  NBD_ERRNO,
  NBD_ESHUTDOWN,
  REQUEST_HEADER_SIZE,
  REQUEST_MAGIC,
  SIMPLE_REPLY_SIZE,
  type SimpleReply,
} from "./protocol.js";

/** Requests admitted at once per connection; beyond this the socket is not read. */
export const MAX_IN_FLIGHT = 256;
/** Bytes of read/write payload admitted at once per connection (≥ 2 maximal requests). */
const MAX_IN_FLIGHT_BYTES = 96 * 1024 * 1024;

const OPS: readonly (IoOp | undefined)[] = [
  "read",
  "write",
  undefined,
  "flush",
  "trim",
  undefined,
  "write_zeroes",
];

export interface TransmissionHooks {
  /** The client broke the protocol in a way that cannot be answered; `drained` follows. */
  protocolError(reason: string, detail: Record<string, unknown>): void;
  /** Parsing has stopped (DISC, end of input, shutdown) and no request is in flight. */
  drained(): void;
}

export class Transmission {
  private inFlight = 0;
  private inFlightBytes = 0;
  /** Bytes the next request needs in the queue before it can be parsed (header, + payload for WRITE). */
  private need = REQUEST_HEADER_SIZE;
  /** No more requests are parsed: DISC, end of input, protocol error or server shutdown. */
  private stopped = false;
  private shuttingDown = false;
  private socketPaused = false;
  private readonly header = Buffer.allocUnsafe(REQUEST_HEADER_SIZE);
  private readonly writer: SocketWriter<SimpleReply>;
  private readonly name: string;
  requests = 0;

  constructor(
    private readonly socket: Socket,
    private readonly queue: ByteQueue,
    private readonly lease: ExportLease,
    private readonly log: Logger,
    private readonly hooks: TransmissionHooks,
  ) {
    this.name = lease.name;
    this.writer = new SocketWriter(socket, encodeSimpleReply, SIMPLE_REPLY_SIZE, {
      onDrain: () => {
        if (!this.stopped) this.pump();
      },
    });
  }

  get busy(): number {
    return this.inFlight;
  }

  /** Parses and starts every complete request in the queue, as far as the limits allow. */
  pump(): void {
    const queue = this.queue;
    while (!this.stopped) {
      if (queue.length < this.need) break;
      if (
        !this.shuttingDown &&
        (this.writer.blocked || this.inFlight >= MAX_IN_FLIGHT || this.inFlightBytes >= MAX_IN_FLIGHT_BYTES)
      ) {
        this.pauseSocket();
        return;
      }
      let h = queue.peekContiguous(REQUEST_HEADER_SIZE);
      let at = queue.headOffset;
      if (h === undefined) {
        h = this.header;
        at = 0;
        queue.copyTo(h, REQUEST_HEADER_SIZE);
      }
      if (h.readUInt32BE(at) !== REQUEST_MAGIC) {
        this.fail("bad request magic", { magic: h.readUInt32BE(at) });
        return;
      }
      const flags = h.readUInt16BE(at + 4);
      const type = h.readUInt16BE(at + 6);
      const cookieHi = h.readUInt32BE(at + 8);
      const cookieLo = h.readUInt32BE(at + 12);
      const offsetHi = h.readUInt32BE(at + 16);
      const offsetLo = h.readUInt32BE(at + 20);
      const length = h.readUInt32BE(at + 24);
      if (type === CMD_WRITE) {
        if (length > MAX_PAYLOAD) {
          // The payload cannot be skipped without trusting the client to send it: hard disconnect.
          this.fail("write payload over the maximum", { length });
          return;
        }
        if (queue.length < REQUEST_HEADER_SIZE + length) {
          this.need = REQUEST_HEADER_SIZE + length;
          break;
        }
      }
      this.need = REQUEST_HEADER_SIZE;
      queue.skip(REQUEST_HEADER_SIZE);
      const payload = type === CMD_WRITE && length > 0 ? queue.take(length, borrowIoBuffer) : undefined;
      this.requests++;
      if (type === CMD_DISC) {
        this.log.debug("nbd: client sent NBD_CMD_DISC");
        this.stop();
        break;
      }
      this.dispatch(type, flags, cookieHi, cookieLo, offsetHi, offsetLo, length, payload);
    }
    this.resumeSocket();
    this.maybeDrained();
  }

  /** No more input will arrive (the client half-closed the socket). */
  endOfInput(): void {
    if (this.stopped) return;
    if (this.queue.length > 0)
      this.log.debug({ bytes: this.queue.length }, "nbd: truncated request at end of input");
    this.stop();
    this.maybeDrained();
  }

  /**
   * Server shutdown: requests already received are refused with ESHUTDOWN, nothing more is read,
   * and in-flight requests finish before `drained`.
   */
  shutdown(): void {
    if (this.stopped) {
      this.maybeDrained();
      return;
    }
    this.shuttingDown = true;
    this.pump();
    this.stop();
    this.maybeDrained();
  }

  /** Sends every queued reply now (before closing the socket). */
  flushReplies(): void {
    this.writer.flush();
  }

  /**
   * An unanswerable protocol violation: parse nothing more, let the requests already started
   * finish and be answered, then the connection closes (via `drained`).
   */
  private fail(reason: string, detail: Record<string, unknown>): void {
    this.stop();
    this.hooks.protocolError(reason, detail);
    this.maybeDrained();
  }

  private stop(): void {
    this.stopped = true;
    this.socket.pause();
  }

  private maybeDrained(): void {
    if (this.stopped && this.inFlight === 0) this.hooks.drained();
  }

  private dispatch(
    type: number,
    flags: number,
    cookieHi: number,
    cookieLo: number,
    offsetHi: number,
    offsetLo: number,
    length: number,
    payload: Buffer | undefined,
  ): void {
    const op = OPS[type];
    const startedAt = process.hrtime.bigint();
    if (op === undefined) {
      this.refuse(NBD_EINVAL, cookieHi, cookieLo, "unknown command", type);
      return;
    }
    const allowed = type === CMD_WRITE_ZEROES ? CMD_FLAG_FUA | CMD_FLAG_NO_HOLE : CMD_FLAG_FUA;
    let error = 0;
    if ((flags & ~allowed) !== 0) error = NBD_EINVAL;
    else if (this.shuttingDown) error = NBD_ESHUTDOWN;
    else if (type === CMD_FLUSH) {
      if (offsetHi !== 0 || offsetLo !== 0 || length !== 0) error = NBD_EINVAL;
    } else if (length === 0 || (type === CMD_READ && length > MAX_PAYLOAD)) {
      error = NBD_EINVAL;
    } else {
      // Offsets ≥ 2^53 cannot be represented exactly, but they are past the end of any export.
      const offset = offsetHi * 0x100000000 + offsetLo;
      if (offsetHi >= 0x200000 || offset + length > this.lease.device.sizeBytes) {
        error = type === CMD_WRITE || type === CMD_WRITE_ZEROES ? NBD_ENOSPC : NBD_EINVAL;
      }
    }
    if (error !== 0) {
      observeIo(this.name, op, 0, startedAt, false);
      this.refuse(error, cookieHi, cookieLo, "request refused", type);
      return;
    }
    const offset = offsetHi * 0x100000000 + offsetLo;
    const bytes = type === CMD_READ || type === CMD_WRITE ? length : 0;
    this.inFlight++;
    this.inFlightBytes += bytes;
    void this.execute(type, flags, cookieHi, cookieLo, offset, length, payload, op, bytes, startedAt);
  }

  private async execute(
    type: number,
    flags: number,
    cookieHi: number,
    cookieLo: number,
    offset: number,
    length: number,
    payload: Buffer | undefined,
    op: IoOp,
    bytes: number,
    startedAt: bigint,
  ): Promise<void> {
    const device = this.lease.device;
    const fua = (flags & CMD_FLAG_FUA) !== 0;
    let error = 0;
    let data: Buffer | undefined;
    try {
      switch (type) {
        case CMD_READ:
          data = await device.read(offset, length);
          if (data.length !== length) {
            throw new BlockIoError("EIO", `device returned ${data.length} bytes for a ${length}-byte read`);
          }
          break;
        case CMD_WRITE:
          await device.write(offset, payload!, { fua });
          break;
        case CMD_FLUSH:
          await device.flush();
          break;
        case CMD_TRIM:
          await device.trim(offset, length, { fua });
          break;
        default:
          await device.writeZeroes(offset, length, { fua, mayPunch: (flags & CMD_FLAG_NO_HOLE) === 0 });
      }
    } catch (cause) {
      const failure = toBlockIoError(cause);
      error = NBD_ERRNO[failure.errno];
      data = undefined;
      this.log.warn(
        { op, offset, length, errno: failure.errno, err: failure.message },
        "nbd: request failed",
      );
    }
    if (payload !== undefined) returnIoBuffer(payload);
    observeIo(this.name, op, bytes, startedAt, error === 0);
    this.inFlight--;
    this.inFlightBytes -= bytes;
    // Read data comes from the I/O pool (see ReplicaHandle.read): the writer gives it back once sent.
    if (!this.socket.destroyed) this.writer.send({ error, cookieHi, cookieLo }, data, true);
    else if (data !== undefined) returnIoBuffer(data);
    if (this.stopped) this.maybeDrained();
    else if (this.socketPaused) this.pump();
  }

  private refuse(error: number, cookieHi: number, cookieLo: number, why: string, type: number): void {
    this.log.debug({ type, error }, `nbd: ${why}`);
    this.writer.send({ error, cookieHi, cookieLo });
  }

  private pauseSocket(): void {
    if (!this.socketPaused) {
      this.socketPaused = true;
      this.socket.pause();
    }
  }

  private resumeSocket(): void {
    if (this.socketPaused && !this.stopped) {
      this.socketPaused = false;
      this.socket.resume();
    }
  }
}
