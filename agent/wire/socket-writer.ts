/**
 * Sends messages (a header, then an optional payload) on one socket, batched: the writer of both
 * the NBD server's replies and the replication protocol's frames, as ByteQueue is the reader of
 * both.
 *
 * Headers (and small payloads) are encoded into a staging buffer that only grows forward, so bytes
 * handed to the socket are never rewritten; large payloads are queued by reference, never copied.
 * Everything queued in one turn of the event loop leaves in one corked burst (one writev).
 *
 * Backpressure: the socket may hold up to MAX_QUEUED_BYTES not yet taken by the kernel, many large
 * payloads' worth, so a pipeline of 1 MiB messages never waits for the socket to empty between
 * two of them. Past that, nothing more is handed to it: messages wait here until 'drain', and
 * `onBackpressure` tells the owner to stop producing (stop reading requests) until `onDrain`.
 */
import type { Socket } from "node:net";
import { returnIoBuffer } from "../io-buffers.js";

/** Writes a header for a message with `payloadLength` bytes of payload at `at`; returns its size. */
export type HeaderEncoder<H> = (target: Buffer, at: number, header: H, payloadLength: number) => number;

export interface SocketWriterHooks {
  /** The socket holds MAX_QUEUED_BYTES or more: stop producing messages. */
  onBackpressure?: () => void;
  /** It has drained: messages may come again. */
  onDrain?: () => void;
}

/** Payloads up to this size are copied next to their header: cheaper than one more iovec. */
const INLINE_PAYLOAD_MAX = 16 * 1024;
const STAGING_SIZE = 256 * 1024;
/** Bytes the socket may hold unsent before the writer holds messages back (see above). */
export const MAX_QUEUED_BYTES = 8 * 1024 * 1024;

export class SocketWriter<H> {
  private staging = Buffer.allocUnsafe(STAGING_SIZE);
  /** Start of the staged bytes not yet moved into `parts`. */
  private stagedFrom = 0;
  private stagedTo = 0;
  private parts: Buffer[] = [];
  /** Parts borrowed from agent/io-buffers.ts: given back once the socket has sent them. */
  private readonly pooled = new Set<Buffer>();
  private scheduled = false;
  private waitingForDrain = false;
  private readonly flushBound = () => this.flush();
  private readonly giveBack = (part: Buffer) => () => returnIoBuffer(part);
  private readonly drainBound = () => {
    this.waitingForDrain = false;
    this.flush();
    if (!this.waitingForDrain) this.hooks.onDrain?.();
  };

  constructor(
    private readonly socket: Socket,
    private readonly encode: HeaderEncoder<H>,
    /** The most bytes one header can take. */
    private readonly maxHeaderBytes: number,
    private readonly hooks: SocketWriterHooks = {},
  ) {}

  /** True while messages are held back until the socket drains. */
  get blocked(): boolean {
    return this.waitingForDrain;
  }

  /**
   * Queues one message; it is sent at the end of this turn of the event loop. `payload` must not
   * change until it is sent. With `pooled`, it came from borrowIoBuffer and this writer gives it
   * back once the socket is done with it (the caller must not use it after this call).
   */
  send(header: H, payload?: Buffer, pooled = false): void {
    const payloadLength = payload?.length ?? 0;
    const inline = payloadLength <= INLINE_PAYLOAD_MAX ? payloadLength : 0;
    this.reserve(this.maxHeaderBytes + inline);
    let p = this.stagedTo;
    p += this.encode(this.staging, p, header, payloadLength);
    if (payload !== undefined && payloadLength > 0) {
      if (inline > 0) {
        payload.copy(this.staging, p);
        p += inline;
        if (pooled) returnIoBuffer(payload);
      } else {
        this.stagedTo = p;
        this.cut();
        this.parts.push(payload);
        if (pooled) this.pooled.add(payload);
      }
    }
    this.stagedTo = p;
    if (!this.scheduled) {
      this.scheduled = true;
      setImmediate(this.flushBound);
    }
  }

  /** Hands everything queued to the socket now (unless it is waiting for 'drain'). */
  flush(): void {
    this.scheduled = false;
    if (this.waitingForDrain) return;
    this.cut();
    const parts = this.parts;
    if (parts.length === 0) return;
    this.parts = [];
    const socket = this.socket;
    if (socket.destroyed || !socket.writable) {
      // Never sent: nothing references the pooled payloads any more.
      for (const part of parts) if (this.pooled.delete(part)) returnIoBuffer(part);
      return;
    }
    if (parts.length > 1) socket.cork();
    for (const part of parts) {
      // The callback runs once the bytes are written, or the write failed: either way libuv is done.
      if (this.pooled.delete(part)) socket.write(part, this.giveBack(part));
      else socket.write(part);
    }
    if (parts.length > 1) socket.uncork();
    if (socket.writableLength >= MAX_QUEUED_BYTES) {
      this.waitingForDrain = true;
      socket.once("drain", this.drainBound);
      this.hooks.onBackpressure?.();
    }
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
