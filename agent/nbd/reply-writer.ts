import type { Socket } from "node:net";
import { returnIoBuffer } from "../io-buffers.js";
import { SIMPLE_REPLY_MAGIC, SIMPLE_REPLY_SIZE } from "./protocol.js";

/** Read payloads up to this size are copied next to their header; larger ones go out as they are. */
const INLINE_DATA_MAX = 16 * 1024;
const STAGING_SIZE = 256 * 1024;

/**
 * Batches simple replies for one connection. Headers (and small read payloads) are appended to a
 * staging buffer that only ever grows forward, so the regions handed to the socket are never
 * rewritten; large payloads are queued by reference. Everything queued during one turn of the
 * event loop leaves in one corked burst (a single writev).
 */
export class ReplyWriter {
  private staging = Buffer.allocUnsafe(STAGING_SIZE);
  /** Start of the staged bytes not yet queued as a part. */
  private stagedFrom = 0;
  private stagedTo = 0;
  private parts: Buffer[] = [];
  /** Read payloads queued by reference: given back to the I/O pool once the socket has sent them. */
  private lent = new Set<Buffer>();
  private scheduled = false;
  private readonly flushBound = () => this.flush();

  constructor(
    private readonly socket: Socket,
    /** Called after a flush that left the socket over its high-water mark. */
    private readonly onBackpressure: () => void,
  ) {}

  /** Queues a simple reply: magic, error, cookie (as two 32-bit halves), then `data` if any. */
  reply(error: number, cookieHi: number, cookieLo: number, data?: Buffer): void {
    const inline = data !== undefined && data.length <= INLINE_DATA_MAX ? data.length : 0;
    this.reserve(SIMPLE_REPLY_SIZE + inline);
    const b = this.staging;
    let p = this.stagedTo;
    b.writeUInt32BE(SIMPLE_REPLY_MAGIC, p);
    b.writeUInt32BE(error, p + 4);
    b.writeUInt32BE(cookieHi, p + 8);
    b.writeUInt32BE(cookieLo, p + 12);
    p += SIMPLE_REPLY_SIZE;
    if (data !== undefined && data.length > 0) {
      if (inline > 0) {
        data.copy(b, p);
        p += inline;
        returnIoBuffer(data);
      } else {
        this.stagedTo = p;
        this.cut();
        this.parts.push(data);
        this.lent.add(data);
      }
    }
    this.stagedTo = p;
    if (!this.scheduled) {
      this.scheduled = true;
      setImmediate(this.flushBound);
    }
  }

  /** Hands everything queued to the socket now. */
  flush(): void {
    this.scheduled = false;
    this.cut();
    const parts = this.parts;
    if (parts.length === 0) return;
    this.parts = [];
    const socket = this.socket;
    if (socket.destroyed || !socket.writable) {
      this.lent.clear();
      return;
    }
    if (parts.length > 1) socket.cork();
    for (const part of parts) {
      if (this.lent.delete(part)) socket.write(part, () => returnIoBuffer(part));
      else socket.write(part);
    }
    if (parts.length > 1) socket.uncork();
    if (socket.writableNeedDrain) this.onBackpressure();
  }

  /** Moves the staged bytes into the list of parts. */
  private cut(): void {
    if (this.stagedTo > this.stagedFrom) {
      this.parts.push(this.staging.subarray(this.stagedFrom, this.stagedTo));
      this.stagedFrom = this.stagedTo;
    }
  }

  /** Makes room for `n` contiguous staged bytes, starting a fresh staging buffer if needed. */
  private reserve(n: number): void {
    if (this.stagedTo + n <= this.staging.length) return;
    this.cut();
    this.staging = Buffer.allocUnsafe(Math.max(STAGING_SIZE, n));
    this.stagedFrom = 0;
    this.stagedTo = 0;
  }
}
