/**
 * One connection to the replica server: authenticates the peer, then parses requests, runs them
 * against the local replicas concurrently and answers each as soon as it finishes (out of order;
 * the request id ties a reply to its request). Nothing a peer sends before it has authenticated
 * is acted on, and a frame that cannot be delimited closes the connection.
 */
import type { Socket } from "node:net";
import { z } from "zod";
import { BlockIoError, toBlockIoError } from "../../block-device.js";
import { returnIoBuffer } from "../../io-buffers.js";
import type { Logger } from "../../log.js";
import { ByteQueue } from "../../wire/byte-queue.js";
import type { ReplicaAdmin } from "../replica-admin.js";
import { ServerHandshake } from "../wire/auth.js";
import {
  controlFields,
  type Frame,
  FrameDecoder,
  type FrameWriter,
  frameWriter,
} from "../wire/frame-codec.js";
import {
  ERRNO_STATUS,
  FrameFlag,
  FrameType,
  MAX_CONTROL_PAYLOAD,
  MAX_HANDSHAKE_PAYLOAD,
  MAX_IO_BYTES,
  REPLY_BIT,
  Status,
} from "../wire/protocol.js";
import { ADMIN_TYPES, checkAdminShape, NEED_NO_REPLICA, parsePayload, runAdmin } from "./admin-requests.js";
import { Refusal } from "./refusal.js";
import { EpochMismatch, type ServedReplicaEntry } from "./served-replica.js";

/** Requests run at once per connection; beyond this the socket is not read (backpressure). */
const MAX_IN_FLIGHT = 256;
/** Read and write bytes held at once per connection: room for a few maximal requests. */
const MAX_IN_FLIGHT_BYTES = 96 * 1024 * 1024;
/** How long a refused peer may take to read the ERROR frame before its socket is destroyed. */
const CLOSE_GRACE_MS = 2000;
/** Error replies carry the reason as text; long enough to be useful, short enough to be free. */
const MAX_REASON_BYTES = 512;
const SET_EPOCH_PAYLOAD = 8;

export interface SessionContext {
  secret: Buffer;
  /** The entry of the replica serving `volumeId` here, if any. */
  entryFor(volumeId: string): ServedReplicaEntry | undefined;
  /** The node's replica management; without it CREATE/DELETE/LIST_REPLICAS answer NOT_MANAGED. */
  admin: ReplicaAdmin | undefined;
  log: Logger;
  handshakeTimeoutMs: number;
}

const SnapshotRequest = z.object({
  id: z.string().min(1).max(128),
  name: z.string().min(1).max(255),
});

/** The flags each request type may carry. */
const ALLOWED_FLAGS: ReadonlyMap<number, number> = new Map([
  [FrameType.READ, 0],
  [FrameType.WRITE, FrameFlag.FUA],
  [FrameType.WRITE_ZEROES, FrameFlag.FUA | FrameFlag.MAY_PUNCH],
  [FrameType.TRIM, FrameFlag.FUA],
  [FrameType.FLUSH, 0],
  [FrameType.SNAPSHOT, 0],
  [FrameType.GET_STATE, 0],
  [FrameType.SET_EPOCH, 0],
  ...[...ADMIN_TYPES].map((type): [number, number] => [type, 0]),
]);

export class ServerSession {
  private readonly queue = new ByteQueue();
  private readonly decoder = new FrameDecoder(this.queue, MAX_HANDSHAKE_PAYLOAD);
  private readonly writer: FrameWriter;
  private readonly handshake: ServerHandshake;
  private readonly log: Logger;
  private phase: "auth" | "serving" | "draining" | "closing" | "closed" = "auth";
  private handshakeTimer: NodeJS.Timeout | undefined;
  private inFlight = 0;
  private inFlightBytes = 0;
  private socketPaused = false;
  private finished = false;
  private resolveClosed!: () => void;
  /** Resolves once the socket has closed and no request is still running against a replica. */
  readonly closed = new Promise<void>((resolve) => {
    this.resolveClosed = resolve;
  });

  constructor(
    private readonly socket: Socket,
    private readonly context: SessionContext,
  ) {
    this.log = context.log.child({ peer: `${socket.remoteAddress}:${socket.remotePort}` });
    this.handshake = new ServerHandshake(context.secret);
    this.writer = frameWriter(socket, {
      onBackpressure: () => this.pauseSocket(),
      onDrain: () => this.pump(),
    });
  }

  start(): void {
    const socket = this.socket;
    socket.on("data", (chunk: Buffer) => {
      if (this.phase !== "auth" && this.phase !== "serving") return;
      this.queue.push(chunk);
      this.pump();
    });
    socket.on("end", () => {
      if (this.phase === "auth" || this.phase === "serving") this.drain();
    });
    socket.on("error", (err) => this.log.debug({ err: err.message }, "replication: socket error"));
    socket.on("close", () => {
      this.phase = "closed";
      clearTimeout(this.handshakeTimer);
      this.maybeFinished();
    });
    this.handshakeTimer = setTimeout(() => {
      if (this.phase === "auth") this.refuse(Status.AUTH_FAILED, "no authentication in time", {});
    }, this.context.handshakeTimeoutMs);
    this.handshakeTimer.unref();
  }

  /** Server shutdown: requests already running finish and are answered, then the connection closes. */
  shutdown(): void {
    if (this.phase === "auth") this.close();
    else if (this.phase === "serving") this.drain();
  }

  private pump(): void {
    while (this.phase === "auth" || this.phase === "serving") {
      if (
        this.phase === "serving" &&
        (this.writer.blocked || this.inFlight >= MAX_IN_FLIGHT || this.inFlightBytes >= MAX_IN_FLIGHT_BYTES)
      ) {
        this.pauseSocket();
        return;
      }
      const result = this.decoder.next();
      if (result.kind === "incomplete") break;
      if (result.kind === "fatal") {
        // An unauthenticated peer learns only that it is refused; the reason is in our log.
        const status = this.phase === "auth" ? Status.AUTH_FAILED : Status.BAD_REQUEST;
        this.refuse(status, result.reason, result.detail);
        return;
      }
      if (this.phase === "auth") this.authenticate(result.frame);
      else this.dispatch(result.frame);
    }
    if (this.socketPaused && this.phase === "serving") {
      this.socketPaused = false;
      this.socket.resume();
    }
  }

  private authenticate(frame: Frame): void {
    if (frame.type === FrameType.ERROR) {
      // The client found our proof wrong: one of us has another cluster's secret.
      const reason = `the peer refused our proof: ${frame.payload.toString("utf8")}`;
      this.refuse(Status.AUTH_FAILED, reason, {});
      return;
    }
    const step = this.handshake.step(frame);
    if (step.kind === "refuse") {
      this.refuse(Status.AUTH_FAILED, step.reason, { type: frame.type });
      return;
    }
    const send = step.kind === "send" ? step : step.send;
    if (send !== undefined) this.writer.send(controlFields(send.type, Status.OK), send.payload);
    if (step.kind === "done") {
      clearTimeout(this.handshakeTimer);
      this.phase = "serving";
      this.decoder.maxPayload = MAX_IO_BYTES;
      this.log.info("replication: peer authenticated");
    }
  }

  private dispatch(frame: Frame): void {
    if (frame.type === FrameType.ERROR) {
      this.log.warn({ status: frame.status, reason: frame.payload.toString() }, "replication: peer gave up");
      this.close();
      return;
    }
    const problem = checkShape(frame);
    if (problem !== undefined) {
      this.log.warn({ type: frame.type, requestId: frame.requestId, problem }, "replication: bad request");
      this.reply(frame, Status.BAD_REQUEST, 0, Buffer.from(problem));
      returnIoBuffer(frame.payload);
      return;
    }
    const entry = this.context.entryFor(frame.volumeId);
    if (entry === undefined && !NEED_NO_REPLICA.has(frame.type)) {
      this.log.warn(
        { volume: frame.volumeId, type: frame.type },
        "replication: request for an unknown volume",
      );
      this.reply(frame, Status.UNKNOWN_VOLUME, 0);
      returnIoBuffer(frame.payload);
      return;
    }
    const bytes = frame.type === FrameType.READ || frame.type === FrameType.WRITE ? frame.length : 0;
    this.inFlight++;
    this.inFlightBytes += bytes;
    void this.execute(frame, entry, bytes);
  }

  private async execute(frame: Frame, entry: ServedReplicaEntry | undefined, bytes: number): Promise<void> {
    let status: number = Status.OK;
    let payload: Buffer | undefined;
    try {
      payload = ADMIN_TYPES.has(frame.type)
        ? await runAdmin(frame, entry, this.context.admin)
        : await run(frame, entry!);
    } catch (error) {
      status = statusOf(error);
      payload = Buffer.from(errorMessage(error).slice(0, MAX_REASON_BYTES));
      const detail = { volume: frame.volumeId, type: frame.type, epoch: frame.epoch, status };
      if (error instanceof EpochMismatch) this.log.warn(detail, `replication: ${error.message}`);
      else this.log.warn({ ...detail, err: errorMessage(error) }, "replication: request failed");
    }
    // The request is done with its payload (a WRITE's data is on disk, or refused).
    returnIoBuffer(frame.payload);
    this.inFlight--;
    this.inFlightBytes -= bytes;
    // A CREATE_REPLICA found no replica at dispatch: the reply carries the one it made, if any.
    const replicaEpoch = (entry ?? this.context.entryFor(frame.volumeId))?.epoch ?? 0;
    // READ data comes from the I/O pool: the writer gives it back once it is sent.
    this.reply(frame, status, replicaEpoch, payload, frame.type === FrameType.READ && status === Status.OK);
    if (this.phase === "serving") {
      if (this.socketPaused) this.pump();
    } else {
      this.maybeFinished();
    }
  }

  private reply(frame: Frame, status: number, replicaEpoch: number, payload?: Buffer, pooled = false): void {
    if (this.phase === "closing" || this.phase === "closed") {
      if (pooled && payload !== undefined) returnIoBuffer(payload);
      return;
    }
    this.writer.send(
      {
        type: frame.type | REPLY_BIT,
        flags: 0,
        requestId: frame.requestId,
        status,
        volumeId: "",
        epoch: replicaEpoch,
        offset: 0,
        length: frame.length,
      },
      payload,
      pooled,
    );
  }

  /** The peer cannot be served: log it, tell it why, and close. Nothing it sent later is read. */
  private refuse(status: number, reason: string, detail: Record<string, number>): void {
    this.log.warn({ ...detail, status, phase: this.phase }, `replication: connection refused: ${reason}`);
    this.writer.send(controlFields(FrameType.ERROR, status), Buffer.from(reason));
    this.close();
  }

  /** No more requests are parsed; the connection closes once the running ones are answered. */
  private drain(): void {
    this.phase = "draining";
    this.socket.pause();
    this.maybeFinished();
  }

  private close(): void {
    if (this.phase === "closing" || this.phase === "closed") return;
    this.writer.flush();
    this.phase = "closing";
    clearTimeout(this.handshakeTimer);
    this.socket.end();
    // Keep reading (and dropping) input so the peer's FIN is seen and the socket can close.
    this.socket.resume();
    setTimeout(() => this.socket.destroy(), CLOSE_GRACE_MS).unref();
  }

  private maybeFinished(): void {
    if (this.inFlight > 0) return;
    if (this.phase === "draining") this.close();
    if (this.phase === "closed" && !this.finished) {
      this.finished = true;
      this.resolveClosed();
    }
  }

  private pauseSocket(): void {
    if (!this.socketPaused) {
      this.socketPaused = true;
      this.socket.pause();
    }
  }
}

/** Why a request cannot be run whatever the replica, or undefined. Checked before anything runs. */
function checkShape(frame: Frame): string | undefined {
  if (frame.defect !== undefined) return frame.defect;
  const allowed = ALLOWED_FLAGS.get(frame.type);
  if (allowed === undefined) return `unknown request type ${frame.type}`;
  if ((frame.flags & ~allowed) !== 0) return `flags ${frame.flags} not allowed`;
  if (frame.status !== 0) return "a request carries no status";
  if (ADMIN_TYPES.has(frame.type)) return checkAdminShape(frame);
  const payload = frame.payload.length;
  switch (frame.type) {
    case FrameType.READ:
      return payload === 0 && frame.length > 0 && frame.length <= MAX_IO_BYTES
        ? undefined
        : "READ needs 0 < length ≤ 32 MiB and no payload";
    case FrameType.WRITE:
      return payload > 0 && payload === frame.length ? undefined : "WRITE needs length = payload length > 0";
    case FrameType.WRITE_ZEROES:
    case FrameType.TRIM:
      return payload === 0 && frame.length > 0 ? undefined : "the range needs length > 0 and no payload";
    case FrameType.SNAPSHOT:
      return payload > 0 && payload <= MAX_CONTROL_PAYLOAD && frame.offset === 0 && frame.length === 0
        ? undefined
        : "SNAPSHOT needs a small JSON payload and no range";
    case FrameType.SET_EPOCH:
      return payload === SET_EPOCH_PAYLOAD && frame.offset === 0 && frame.length === 0
        ? undefined
        : "SET_EPOCH needs the new epoch as an 8-byte payload";
    default: // FLUSH, GET_STATE
      return payload === 0 && frame.offset === 0 && frame.length === 0
        ? undefined
        : "takes no range or payload";
  }
}

/** Runs one well-formed request against its replica; resolves to the reply's payload. */
async function run(frame: Frame, entry: ServedReplicaEntry): Promise<Buffer | undefined> {
  const replica = entry.replica;
  const { offset, length, epoch } = frame;
  const fua = (frame.flags & FrameFlag.FUA) !== 0;
  if (length > 0 && offset + length > replica.sizeBytes) {
    throw new BlockIoError("EINVAL", `${length} bytes at ${offset} are outside the volume`);
  }
  switch (frame.type) {
    case FrameType.READ:
      if (entry.rebuilding) throw new Refusal(Status.NOT_IN_SYNC, "the replica is being rebuilt");
      // Epoch 0 asks for an unfenced read (tools, verification); any other must be current.
      if (epoch !== 0 && epoch !== entry.epoch) throw new EpochMismatch(epoch, entry.epoch, "stale reader");
      return replica.read(offset, length);
    case FrameType.WRITE:
      await entry.mutate(epoch, () => replica.write(offset, frame.payload, { fua }));
      return undefined;
    case FrameType.WRITE_ZEROES: {
      const mayPunch = (frame.flags & FrameFlag.MAY_PUNCH) !== 0;
      await entry.mutate(epoch, () => replica.writeZeroes(offset, length, { fua, mayPunch }));
      return undefined;
    }
    case FrameType.TRIM:
      await entry.mutate(epoch, () => replica.trim(offset, length, { fua }));
      return undefined;
    case FrameType.FLUSH:
      await entry.mutate(epoch, () => replica.flush());
      return undefined;
    case FrameType.SNAPSHOT: {
      const request = parsePayload(SnapshotRequest, frame);
      const info = await entry.mutate(epoch, () => replica.snapshot(request.name, request.id));
      return Buffer.from(JSON.stringify(info));
    }
    case FrameType.GET_STATE:
      return Buffer.from(
        JSON.stringify({
          epoch: entry.epoch,
          sizeBytes: replica.sizeBytes,
          allocatedBytes: replica.allocatedBytes,
          rebuilding: entry.rebuilding,
        }),
      );
    default: {
      // SET_EPOCH: the header's epoch is the one the coordinator expects the replica to be at.
      const next = frame.payload.readUInt32BE(0) * 0x100000000 + frame.payload.readUInt32BE(4);
      if (!Number.isSafeInteger(next)) throw new Refusal(Status.BAD_REQUEST, "new epoch over 2^53 - 1");
      await entry.setEpoch(epoch, next);
      return undefined;
    }
  }
}

function statusOf(error: unknown): number {
  if (error instanceof EpochMismatch) return Status.STALE_EPOCH;
  if (error instanceof Refusal) return error.status;
  return ERRNO_STATUS[toBlockIoError(error).errno];
}

function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
