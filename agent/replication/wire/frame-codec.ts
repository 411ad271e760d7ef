/**
 * Encoding and decoding of one frame (see protocol.ts for the layout). The decoder works on a
 * ByteQueue and checks the declared sizes before it waits for the body, so a peer can never make
 * it buffer more than one maximal frame. Frames are sent through a SocketWriter (frameWriter).
 */
import type { Socket } from "node:net";
import { borrowIoBuffer } from "../../io-buffers.js";
import type { ByteQueue } from "../../wire/byte-queue.js";
import { SocketWriter, type SocketWriterHooks } from "../../wire/socket-writer.js";
import { FRAME_MAGIC, HEADER_SIZE, MAX_VOLUME_ID_BYTES, PROTOCOL_VERSION } from "./protocol.js";

/** The header fields of a frame, as numbers (the payload length is the payload's). */
export interface FrameFields {
  type: number;
  flags: number;
  requestId: number;
  status: number;
  volumeId: string;
  epoch: number;
  offset: number;
  length: number;
}

export interface Frame extends FrameFields {
  /**
   * A view into the receive queue's chunk when contiguous, otherwise a copy in memory borrowed
   * from agent/io-buffers.ts: whoever holds the frame last may give it back (returnIoBuffer) once
   * nothing uses the payload any more (a view is ignored there).
   */
  payload: Buffer;
  /**
   * Set when the frame was delimited correctly but a field cannot be used (a 64-bit value over
   * 2^53 − 1, a reserved byte set): the receiver answers it with BAD_REQUEST instead of acting.
   */
  defect: string | undefined;
}

/** Exact integers stop at 2^53, so the high half of a 64-bit field must stay below 2^21. */
const MAX_SAFE_HIGH = 0x200000;
const TWO_32 = 0x100000000;

export type DecodeResult =
  | { kind: "frame"; frame: Frame }
  | { kind: "incomplete" }
  /** The stream cannot be trusted past this point: the connection must close. */
  | { kind: "fatal"; reason: string; detail: Record<string, number> };

const INCOMPLETE: DecodeResult = { kind: "incomplete" };

/** Writes a header for `fields` and `payloadLength` at `at`, followed by the volume id. Returns the bytes used. */
export function encodeHeader(target: Buffer, at: number, fields: FrameFields, payloadLength: number): number {
  const idBytes = target.write(fields.volumeId, at + HEADER_SIZE, MAX_VOLUME_ID_BYTES, "utf8");
  target.writeUInt32BE(FRAME_MAGIC, at);
  target[at + 4] = PROTOCOL_VERSION;
  target[at + 5] = fields.type;
  target.writeUInt16BE(fields.flags, at + 6);
  target.writeUInt32BE(fields.requestId, at + 8);
  target.writeUInt16BE(fields.status, at + 12);
  target[at + 14] = idBytes;
  target[at + 15] = 0;
  writeU53(target, at + 16, fields.epoch);
  writeU53(target, at + 24, fields.offset);
  target.writeUInt32BE(fields.length, at + 32);
  target.writeUInt32BE(payloadLength, at + 36);
  return HEADER_SIZE + idBytes;
}

/** Sends frames on `socket`, batched (see SocketWriter). */
export type FrameWriter = SocketWriter<FrameFields>;

export function frameWriter(socket: Socket, hooks?: SocketWriterHooks): FrameWriter {
  return new SocketWriter(socket, encodeHeader, HEADER_SIZE + MAX_VOLUME_ID_BYTES, hooks);
}

/** Header fields of a handshake or ERROR frame: no request, volume or range. */
export function controlFields(type: number, status: number): FrameFields {
  return { type, flags: 0, requestId: 0, status, volumeId: "", epoch: 0, offset: 0, length: 0 };
}

/** The bytes a volume id takes on the wire, or -1 when it cannot be sent. */
export function volumeIdBytes(volumeId: string): number {
  const bytes = Buffer.byteLength(volumeId, "utf8");
  return bytes > MAX_VOLUME_ID_BYTES ? -1 : bytes;
}

function writeU53(target: Buffer, at: number, value: number): void {
  target.writeUInt32BE(Math.floor(value / TWO_32), at);
  target.writeUInt32BE(value >>> 0, at + 4);
}

/**
 * Parses frames off one connection's receive queue. `maxPayload` may change between frames
 * (it is small until the peer has authenticated).
 */
export class FrameDecoder {
  private readonly scratch = Buffer.allocUnsafe(HEADER_SIZE);

  constructor(
    private readonly queue: ByteQueue,
    public maxPayload: number,
  ) {}

  /** The next complete frame, consumed from the queue; or why there is none. */
  next(): DecodeResult {
    const queue = this.queue;
    if (queue.length < HEADER_SIZE) return INCOMPLETE;
    let h = queue.peekContiguous(HEADER_SIZE);
    let at = queue.headOffset;
    if (h === undefined) {
      h = this.scratch;
      at = 0;
      queue.copyTo(h, HEADER_SIZE);
    }
    const magic = h.readUInt32BE(at);
    if (magic !== FRAME_MAGIC) return { kind: "fatal", reason: "bad frame magic", detail: { magic } };
    const version = h[at + 4]!;
    if (version !== PROTOCOL_VERSION) {
      return { kind: "fatal", reason: "unsupported protocol version", detail: { version } };
    }
    const payloadLength = h.readUInt32BE(at + 36);
    if (payloadLength > this.maxPayload) {
      return {
        kind: "fatal",
        reason: "frame payload over the maximum",
        detail: { payloadLength, max: this.maxPayload },
      };
    }
    const idLength = h[at + 14]!;
    if (queue.length < HEADER_SIZE + idLength + payloadLength) return INCOMPLETE;

    const epochHigh = h.readUInt32BE(at + 16);
    const offsetHigh = h.readUInt32BE(at + 24);
    let defect: string | undefined;
    if (epochHigh >= MAX_SAFE_HIGH || offsetHigh >= MAX_SAFE_HIGH) defect = "a 64-bit field is over 2^53 - 1";
    else if (h[at + 15] !== 0) defect = "reserved header byte is not zero";
    const frame: Frame = {
      type: h[at + 5]!,
      flags: h.readUInt16BE(at + 6),
      requestId: h.readUInt32BE(at + 8),
      status: h.readUInt16BE(at + 12),
      volumeId: "",
      epoch: epochHigh * TWO_32 + h.readUInt32BE(at + 20),
      offset: offsetHigh * TWO_32 + h.readUInt32BE(at + 28),
      length: h.readUInt32BE(at + 32),
      payload: EMPTY,
      defect,
    };
    queue.skip(HEADER_SIZE);
    if (idLength > 0) frame.volumeId = queue.take(idLength).toString("utf8");
    // A payload spanning socket chunks is assembled in pooled memory: a fresh megabyte per WRITE
    // is a fresh ArrayBuffer, external memory V8 frees only after a GC, and at hundreds of MB/s
    // that memory alone keeps V8 running full mark-compacts back to back.
    if (payloadLength > 0) frame.payload = queue.take(payloadLength, borrowIoBuffer);
    return { kind: "frame", frame };
  }
}

const EMPTY = Buffer.alloc(0);
