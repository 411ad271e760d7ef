/**
 * A hand-driven peer on a raw socket, to send what a well-behaved client never would: frames
 * before authentication, garbage, malformed or oversized frames. It speaks the real handshake
 * (agent/replication/auth.ts) when asked to, with whatever secret it is given.
 */
import { connect, type Socket } from "node:net";
import { ClientHandshake, secretBytes } from "../../agent/replication/wire/auth.js";
import {
  controlFields,
  encodeHeader,
  type Frame,
  FrameDecoder,
  type FrameFields,
} from "../../agent/replication/wire/frame-codec.js";
import { FrameType, HEADER_SIZE, MAX_IO_BYTES, Status } from "../../agent/replication/wire/protocol.js";
import { ByteQueue } from "../../agent/wire/byte-queue.js";

export class RawPeer {
  private readonly queue = new ByteQueue();
  private readonly decoder = new FrameDecoder(this.queue, MAX_IO_BYTES);
  private readonly frames: Frame[] = [];
  private wake: (() => void) | undefined;
  /** Resolves when the server has closed the connection. */
  readonly closed: Promise<void>;

  private constructor(private readonly socket: Socket) {
    socket.on("data", (chunk: Buffer) => {
      this.queue.push(chunk);
      for (let r = this.decoder.next(); r.kind === "frame"; r = this.decoder.next())
        this.frames.push(r.frame);
      this.wake?.();
    });
    socket.on("error", () => {});
    this.closed = new Promise((resolve) =>
      socket.on("close", () => {
        this.wake?.();
        resolve();
      }),
    );
  }

  static open(port: number): Promise<RawPeer> {
    return new Promise((resolve, reject) => {
      const socket = connect({ host: "127.0.0.1", port, noDelay: true });
      socket.once("connect", () => resolve(new RawPeer(socket)));
      socket.once("error", reject);
    });
  }

  /** Connects and completes the handshake with `secret`. */
  static async authenticated(port: number, secret: string): Promise<RawPeer> {
    const peer = await RawPeer.open(port);
    const handshake = new ClientHandshake(secretBytes(secret));
    peer.send(controlFields(FrameType.HELLO, 0), handshake.hello());
    for (;;) {
      const step = handshake.step(await peer.nextFrame());
      if (step.kind === "refuse") throw new Error(step.reason);
      if (step.kind === "done") return peer;
      peer.send(controlFields(step.type, 0), step.payload);
    }
  }

  send(fields: FrameFields, payload: Buffer = Buffer.alloc(0), declaredPayload = payload.length): void {
    this.socket.write(frame(fields, payload, declaredPayload));
  }

  sendBytes(bytes: Buffer): void {
    this.socket.write(bytes);
  }

  /** The next frame from the server; rejects if the connection closes first. */
  async nextFrame(): Promise<Frame> {
    for (;;) {
      const next = this.frames.shift();
      if (next !== undefined) return next;
      if (this.socket.destroyed || this.socket.readableEnded) throw new Error("connection closed");
      await new Promise<void>((resolve) => {
        this.wake = resolve;
      });
    }
  }

  /** Every frame received until the server closed the connection. */
  async framesUntilClosed(): Promise<Frame[]> {
    await this.closed;
    return this.frames.splice(0);
  }

  destroy(): void {
    this.socket.destroy();
  }
}

/** One encoded frame; `declaredPayload` may lie about the payload's length. */
export function frame(fields: FrameFields, payload: Buffer, declaredPayload = payload.length): Buffer {
  const header = Buffer.alloc(HEADER_SIZE + 255);
  const used = encodeHeader(header, 0, fields, declaredPayload);
  return Buffer.concat([header.subarray(0, used), payload]);
}

export function request(fields: Partial<FrameFields> & { type: number }): FrameFields {
  return {
    flags: 0,
    requestId: 1,
    status: Status.OK,
    volumeId: "vol-1",
    epoch: 1,
    offset: 0,
    length: 0,
    ...fields,
  };
}
