/**
 * Sends frames on one socket, batched. Headers (and small payloads) are appended to a staging
 * buffer that only grows forward, so bytes handed to the socket are never rewritten; large
 * payloads are queued by reference, never copied. Everything queued in one turn of the event loop
 * leaves in one corked burst (one writev). While the socket is over its high-water mark nothing
 * more is handed to it: frames wait here until 'drain', and `onBackpressure` tells the owner to
 * stop producing.
 */
import type { Socket } from "node:net";
import { encodeHeader, type FrameFields } from "./frame-codec.js";
import { HEADER_SIZE, MAX_VOLUME_ID_BYTES } from "./protocol.js";

/** Payloads up to this size are copied next to their header: cheaper than one more iovec. */
const INLINE_PAYLOAD_MAX = 16 * 1024;
const STAGING_SIZE = 256 * 1024;
/** Room one header can take in the staging buffer, whatever its volume id. */
const MAX_HEADER_BYTES = HEADER_SIZE + MAX_VOLUME_ID_BYTES;

export class FrameWriter {
  private staging = Buffer.allocUnsafe(STAGING_SIZE);
  /** Start of the staged bytes not yet moved into `parts`. */
  private stagedFrom = 0;
  private stagedTo = 0;
  private parts: Buffer[] = [];
  private scheduled = false;
  private waitingForDrain = false;
  private readonly flushBound = () => this.flush();
  private readonly drainBound = () => {
    this.waitingForDrain = false;
    this.flush();
    if (!this.waitingForDrain) this.onDrain?.();
  };

  constructor(
    private readonly socket: Socket,
    /** Called when the socket goes over its high-water mark. */
    private readonly onBackpressure?: () => void,
    /** Called when it has drained again. */
    private readonly onDrain?: () => void,
  ) {}

  /** True while the socket is over its high-water mark. */
  get blocked(): boolean {
    return this.waitingForDrain;
  }

  /** Queues one frame; it is sent at the end of this turn of the event loop. */
  send(fields: FrameFields, payload?: Buffer): void {
    const payloadLength = payload?.length ?? 0;
    const inline = payloadLength <= INLINE_PAYLOAD_MAX ? payloadLength : 0;
    this.reserve(MAX_HEADER_BYTES + inline);
    let p = this.stagedTo;
    p += encodeHeader(this.staging, p, fields, payloadLength);
    if (payload !== undefined && payloadLength > 0) {
      if (inline > 0) {
        payload.copy(this.staging, p);
        p += inline;
      } else {
        this.stagedTo = p;
        this.cut();
        this.parts.push(payload);
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
    if (socket.destroyed || !socket.writable) return;
    socket.cork();
    for (const part of parts) socket.write(part);
    socket.uncork();
    if (socket.writableNeedDrain) {
      this.waitingForDrain = true;
      socket.once("drain", this.drainBound);
      this.onBackpressure?.();
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
