/**
 * The coordinator's side of one connection to a remote replica server: authenticates, then sends
 * requests pipelined (each gets a request id; replies may come back in any order). A request
 * settles exactly once: with its reply, with a refusal (StaleEpochError, UnknownVolumeError,
 * BlockIoError for an I/O errno), or with ReplicaUnavailableError when the replica cannot answer
 * (connection lost, timeout, client closed). A timeout or a protocol error closes the connection:
 * the coordinator reconnects (and resyncs the replica) when it wants it back.
 */
import { connect, type Socket } from "node:net";
import { z } from "zod";
import { BlockIoError, type ByteRange, type WriteOptions, type WriteZeroesOptions } from "../block-device.js";
import type { Logger } from "../log.js";
import type { SnapshotInfo } from "../store/replica.js";
import { ByteQueue } from "../wire/byte-queue.js";
import { ReplicaAuthError, ReplicaUnavailableError, replyError } from "./errors.js";
import {
  AllocatedRunsPage,
  DeleteReplicaReply,
  ListReplicasReply,
  ReplicaInfo,
  type ReplicaSpec,
} from "./replica-admin.js";
import { ClientHandshake, type ClusterSecret, secretBytes } from "./wire/auth.js";
import {
  controlFields,
  type Frame,
  FrameDecoder,
  type FrameFields,
  type FrameWriter,
  frameWriter,
  volumeIdBytes,
} from "./wire/frame-codec.js";
import {
  FrameFlag,
  FrameType,
  MAX_CONTROL_PAYLOAD,
  MAX_IO_BYTES,
  REPLY_BIT,
  type RequestType,
  Status,
} from "./wire/protocol.js";

/** A replica slower than this is treated as failed (the coordinator then removes it). */
export const DEFAULT_REQUEST_TIMEOUT_MS = 5000;
/** How long close() waits for the server to answer what is in flight before dropping the socket. */
const CLOSE_GRACE_MS = 2000;
/** Range lengths travel in a 32-bit field. */
const MAX_RANGE_BYTES = 0xffffffff;

export interface ReplicaClientOptions {
  host: string;
  port: number;
  secret: ClusterSecret;
  log: Logger;
  /** Per request, and for connecting + authenticating (default DEFAULT_REQUEST_TIMEOUT_MS). */
  timeoutMs?: number;
}

/** The frames answered with a page of runs, by name for error messages. */
const RUNS_FRAME_NAMES = {
  [FrameType.ALLOCATED_RUNS]: "ALLOCATED_RUNS",
  [FrameType.CHANGED_RUNS]: "CHANGED_RUNS",
  [FrameType.SNAPSHOT_RUNS]: "SNAPSHOT_RUNS",
} as const;

export const ReplicaState = z.object({
  epoch: z.number().int().nonnegative(),
  sizeBytes: z.number().int().nonnegative(),
  allocatedBytes: z.number().int().nonnegative(),
  rebuilding: z.boolean(),
});
export type ReplicaState = z.infer<typeof ReplicaState>;

const RemoteSnapshotInfo = z.object({
  id: z.string(),
  name: z.string(),
  createdAt: z.string(),
  layerId: z.number().int(),
});

interface Pending {
  type: RequestType;
  volumeId: string;
  epoch: number;
  /** performance.now() after which the request fails with a timeout. */
  deadline: number;
  resolve: (frame: Frame) => void;
  reject: (error: Error) => void;
}

/** Connects and authenticates; rejects with ReplicaUnavailableError or ReplicaAuthError. */
export async function connectReplica(options: ReplicaClientOptions): Promise<ReplicaClient> {
  const client = new ReplicaClient(options, secretBytes(options.secret));
  await client.ready;
  return client;
}

export class ReplicaClient {
  private readonly socket: Socket;
  private readonly queue = new ByteQueue();
  /** The server chose to be connected to; its control frames may be larger than a handshake's. */
  private readonly decoder = new FrameDecoder(this.queue, MAX_CONTROL_PAYLOAD);
  private readonly writer: FrameWriter;
  private readonly handshake: ClientHandshake;
  private readonly log: Logger;
  private readonly timeoutMs: number;
  private readonly sweeper: NodeJS.Timeout;
  /** In send order, which is deadline order: the first one is the first to time out. */
  private readonly pending = new Map<number, Pending>();
  private nextId = 1;
  private state: "auth" | "ready" | "closing" | "closed" = "auth";
  /** Why requests can no longer be sent, once they cannot. */
  private failure: Error | undefined;
  private settleReady!: (error?: Error) => void;
  /** Resolves when authenticated; rejects when the connection could not be set up. */
  readonly ready: Promise<void>;
  private resolveDisconnected!: (error: Error) => void;
  /** Resolves (never rejects) with the reason once the connection is gone, whoever closed it. */
  readonly disconnected = new Promise<Error>((resolve) => {
    this.resolveDisconnected = resolve;
  });

  /** Use connectReplica. */
  constructor(
    private readonly options: ReplicaClientOptions,
    secret: Buffer,
  ) {
    this.log = options.log.child({ replica: `${options.host}:${options.port}` });
    this.timeoutMs = options.timeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS;
    this.handshake = new ClientHandshake(secret);
    this.ready = new Promise<void>((resolve, reject) => {
      this.settleReady = (error) => (error === undefined ? resolve() : reject(error));
    });
    const socket = connect({ host: options.host, port: options.port, noDelay: true, allowHalfOpen: true });
    this.socket = socket;
    this.writer = frameWriter(socket);
    const connectTimer = setTimeout(
      () =>
        this.fail(
          new ReplicaUnavailableError("timeout", `${this.peer}: no authenticated connection in time`),
        ),
      this.timeoutMs,
    );
    void this.ready.then(
      () => clearTimeout(connectTimer),
      () => clearTimeout(connectTimer),
    );
    socket.on("connect", () =>
      this.writer.send(controlFields(FrameType.HELLO, Status.OK), this.handshake.hello()),
    );
    socket.on("data", (chunk: Buffer) => this.onData(chunk));
    socket.on("end", () => socket.end());
    socket.on("error", (err: NodeJS.ErrnoException) => {
      const reason =
        this.state === "auth" && err.code === "ECONNREFUSED" ? "connect-failed" : "connection-lost";
      this.fail(new ReplicaUnavailableError(reason, `${this.peer}: ${err.message}`));
    });
    socket.on("close", () => {
      this.fail(new ReplicaUnavailableError("connection-lost", `${this.peer}: connection lost`));
      this.state = "closed";
      clearInterval(this.sweeper);
      this.resolveDisconnected(this.failure!);
    });
    // Requests share one timeout, so checking a few times per timeout bounds the overshoot to 25%.
    this.sweeper = setInterval(() => this.sweep(), Math.max(10, this.timeoutMs / 4));
    this.sweeper.unref();
  }

  private get peer(): string {
    return `replica ${this.options.host}:${this.options.port}`;
  }

  /** Requests sent and not yet answered. */
  get inFlight(): number {
    return this.pending.size;
  }

  /**
   * Reads bytes of the replica. With `epoch`, the replica refuses (StaleEpochError) unless it is
   * its epoch, so a fenced coordinator cannot read data a newer one may have overwritten. The
   * caller owns the returned buffer (it may come from agent/io-buffers.ts: give it back once done).
   */
  async read(volumeId: string, offset: number, length: number, options: { epoch?: number } = {}) {
    checkLength(length, MAX_IO_BYTES);
    const reply = await this.request(FrameType.READ, 0, volumeId, options.epoch ?? 0, offset, length);
    if (reply.payload.length !== length) {
      throw new BlockIoError("EIO", `${this.peer} returned ${reply.payload.length} bytes for ${length}`);
    }
    return reply.payload;
  }

  /** `data` is sent by reference: it must not change until the promise settles. */
  async write(volumeId: string, epoch: number, offset: number, data: Buffer, options: WriteOptions) {
    checkLength(data.length, MAX_IO_BYTES);
    const flags = options.fua ? FrameFlag.FUA : 0;
    await this.request(FrameType.WRITE, flags, volumeId, epoch, offset, data.length, data);
  }

  async writeZeroes(
    volumeId: string,
    epoch: number,
    offset: number,
    length: number,
    options: WriteZeroesOptions,
  ) {
    checkLength(length, MAX_RANGE_BYTES);
    const flags = (options.fua ? FrameFlag.FUA : 0) | (options.mayPunch ? FrameFlag.MAY_PUNCH : 0);
    await this.request(FrameType.WRITE_ZEROES, flags, volumeId, epoch, offset, length);
  }

  async trim(volumeId: string, epoch: number, offset: number, length: number, options: WriteOptions) {
    checkLength(length, MAX_RANGE_BYTES);
    await this.request(FrameType.TRIM, options.fua ? FrameFlag.FUA : 0, volumeId, epoch, offset, length);
  }

  /** Resolves when every write the replica completed before it is durable. */
  async flush(volumeId: string, epoch: number) {
    await this.request(FrameType.FLUSH, 0, volumeId, epoch, 0, 0);
  }

  /** Takes a snapshot named `name`; `id` is the coordinator's, the same on every replica. */
  async snapshot(volumeId: string, epoch: number, snapshot: { id: string; name: string }) {
    const payload = Buffer.from(JSON.stringify({ id: snapshot.id, name: snapshot.name }));
    const reply = await this.request(FrameType.SNAPSHOT, 0, volumeId, epoch, 0, 0, payload);
    return parseJson(RemoteSnapshotInfo, reply.payload, "SNAPSHOT") satisfies SnapshotInfo;
  }

  async getState(volumeId: string): Promise<ReplicaState> {
    const reply = await this.request(FrameType.GET_STATE, 0, volumeId, 0, 0, 0);
    return parseJson(ReplicaState, reply.payload, "GET_STATE");
  }

  /**
   * Moves the replica to `newEpoch` (> expectedEpoch), if it is at `expectedEpoch`. Resolves once
   * the replica has persisted it and no write with the old epoch can land any more.
   */
  async setEpoch(volumeId: string, expectedEpoch: number, newEpoch: number) {
    checkU53(newEpoch);
    const payload = Buffer.allocUnsafe(8);
    payload.writeUInt32BE(Math.floor(newEpoch / 0x100000000), 0);
    payload.writeUInt32BE(newEpoch >>> 0, 4);
    await this.request(FrameType.SET_EPOCH, 0, volumeId, expectedEpoch, 0, 0, payload);
  }

  // ---- replica management (agent to agent) ----

  /**
   * Creates the volume's replica on the server, empty, at `epoch`. Idempotent: the same replica id
   * already there is answered as it is now. Rejects with ReplicaExistsError when another replica
   * of the volume is there.
   */
  async createReplica(spec: ReplicaSpec): Promise<ReplicaInfo> {
    const { volumeId, replicaId, sizeBytes, epoch } = spec;
    const payload = Buffer.from(JSON.stringify({ replicaId, sizeBytes }));
    const reply = await this.request(FrameType.CREATE_REPLICA, 0, volumeId, epoch, 0, 0, payload);
    return parseJson(ReplicaInfo, reply.payload, "CREATE_REPLICA");
  }

  /** Deletes the volume's replica if it is `replicaId`; resolves false when it was not there. */
  async deleteReplica(volumeId: string, replicaId: string): Promise<boolean> {
    const payload = Buffer.from(JSON.stringify({ replicaId }));
    const reply = await this.request(FrameType.DELETE_REPLICA, 0, volumeId, 0, 0, 0, payload);
    return parseJson(DeleteReplicaReply, reply.payload, "DELETE_REPLICA").deleted;
  }

  /**
   * Sets (a rebuild target: it takes writes, refuses reads) or clears the replica's rebuild mark.
   * Fenced: `epoch` must be the replica's. The server persists the mark across restarts.
   */
  async setRebuilding(volumeId: string, epoch: number, rebuilding: boolean): Promise<void> {
    const payload = Buffer.from(JSON.stringify({ rebuilding }));
    await this.request(FrameType.SET_REBUILDING, 0, volumeId, epoch, 0, 0, payload);
  }

  /** Grows the replica to `sizeBytes`; fenced by `epoch`. */
  async resizeReplica(volumeId: string, epoch: number, sizeBytes: number): Promise<void> {
    await this.control(FrameType.RESIZE_REPLICA, volumeId, epoch, { sizeBytes });
  }

  /** Deletes a snapshot of the replica; UnknownSnapshotError when it has none with that id. */
  async deleteSnapshot(volumeId: string, epoch: number, snapshotId: string): Promise<void> {
    await this.control(FrameType.DELETE_SNAPSHOT, volumeId, epoch, { snapshotId });
  }

  /** Makes the replica's live view the snapshot again; UnknownSnapshotError when it lacks it. */
  async revertReplica(volumeId: string, epoch: number, snapshotId: string): Promise<void> {
    await this.control(FrameType.REVERT_REPLICA, volumeId, epoch, { snapshotId });
  }

  /**
   * The ranges where a snapshot of the replica holds data (with `since`, where it may differ from
   * that older snapshot), page by page; fenced like a read.
   */
  snapshotRuns(volumeId: string, epoch: number, snapshotId: string, since?: string): Promise<ByteRange[]> {
    const payload = Buffer.from(JSON.stringify({ snapshotId, since }));
    return this.allRuns((from) => this.runsPage(FrameType.SNAPSHOT_RUNS, volumeId, epoch, from, payload));
  }

  /** Bytes of a snapshot of the replica; fenced like a read. */
  async readSnapshot(volumeId: string, epoch: number, snapshotId: string, offset: number, length: number) {
    checkLength(length, MAX_IO_BYTES);
    const payload = Buffer.from(JSON.stringify({ snapshotId }));
    const reply = await this.request(FrameType.READ_SNAPSHOT, 0, volumeId, epoch, offset, length, payload);
    if (reply.payload.length !== length) {
      throw new BlockIoError(
        "EIO",
        `${this.peer}: READ_SNAPSHOT answered ${reply.payload.length} of ${length} bytes`,
      );
    }
    return reply.payload;
  }

  private control(type: RequestType, volumeId: string, epoch: number, body: object) {
    return this.request(type, 0, volumeId, epoch, 0, 0, Buffer.from(JSON.stringify(body)));
  }

  /** The replicas on the server: all of them, or only the one of `volumeId` (none or one). */
  async listReplicas(volumeId?: string): Promise<ReplicaInfo[]> {
    const reply = await this.request(FrameType.LIST_REPLICAS, 0, volumeId ?? "", 0, 0, 0);
    return parseJson(ListReplicasReply, reply.payload, "LIST_REPLICAS").replicas;
  }

  /**
   * One page of the replica's allocated runs, from byte `from` on; the next page starts at `next`.
   * With `epoch`, refused unless it is the replica's (like read). A rebuilding replica refuses.
   */
  allocatedRunsPage(volumeId: string, from: number, options: { epoch?: number } = {}) {
    return this.runsPage(FrameType.ALLOCATED_RUNS, volumeId, options.epoch ?? 0, from);
  }

  /**
   * Every allocated run of the replica, page by page. A consistent picture only while the volume
   * does not change: a coordinator asks while it holds writes back (rebuild's join).
   */
  allocatedRuns(volumeId: string, options: { epoch?: number } = {}): Promise<ByteRange[]> {
    return this.allRuns((from) => this.allocatedRunsPage(volumeId, from, options));
  }

  /**
   * The ranges of the regions the replica changed at epoch `since` or later (its dirty-region
   * marks), page by page; fenced by `epoch` like a read (0: unfenced).
   */
  changedRuns(volumeId: string, epoch: number, since: number): Promise<ByteRange[]> {
    const payload = Buffer.from(JSON.stringify({ since }));
    return this.allRuns((from) => this.runsPage(FrameType.CHANGED_RUNS, volumeId, epoch, from, payload));
  }

  private async runsPage(
    type: keyof typeof RUNS_FRAME_NAMES,
    volumeId: string,
    epoch: number,
    from: number,
    payload?: Buffer,
  ): Promise<AllocatedRunsPage> {
    const reply = await this.request(type, 0, volumeId, epoch, from, 0, payload);
    return parseJson(AllocatedRunsPage, reply.payload, RUNS_FRAME_NAMES[type]);
  }

  private async allRuns(page: (from: number) => Promise<AllocatedRunsPage>): Promise<ByteRange[]> {
    const runs: ByteRange[] = [];
    for (let from: number | null = 0; from !== null; ) {
      const next: AllocatedRunsPage = await page(from);
      for (const [offset, length] of next.runs) runs.push({ offset, length });
      if (next.next !== null && next.next <= from) {
        throw new BlockIoError("EIO", `${this.peer}: a page of runs did not move past ${from}`);
      }
      from = next.next;
    }
    return runs;
  }

  /**
   * Sends nothing more; requests in flight still get their replies (up to a grace period), then
   * the connection closes. Later requests reject with ReplicaUnavailableError("closed").
   */
  async close(): Promise<void> {
    if (this.state === "auth" || this.state === "ready") {
      this.failure = new ReplicaUnavailableError("closed", `${this.peer}: client closed`);
      this.settleReady(this.failure);
      this.state = "closing";
      this.writer.flush();
      this.socket.end();
      setTimeout(() => this.socket.destroy(), CLOSE_GRACE_MS).unref();
    }
    await this.disconnected;
  }

  private request(
    type: RequestType,
    flags: number,
    volumeId: string,
    epoch: number,
    offset: number,
    length: number,
    payload?: Buffer,
  ): Promise<Frame> {
    if (this.state !== "ready") {
      return Promise.reject(
        this.failure ?? new ReplicaUnavailableError("closed", `${this.peer}: not connected`),
      );
    }
    // Only LIST_REPLICAS may name no volume (it then lists them all).
    const idBytes = volumeIdBytes(volumeId);
    if (idBytes < 0 || (idBytes === 0 && type !== FrameType.LIST_REPLICAS)) {
      throw new RangeError(`volume id must be 1–255 bytes: ${volumeId}`);
    }
    checkU53(epoch);
    checkU53(offset);
    const requestId = this.allocateId();
    const fields: FrameFields = { type, flags, requestId, status: 0, volumeId, epoch, offset, length };
    return new Promise<Frame>((resolve, reject) => {
      const deadline = performance.now() + this.timeoutMs;
      this.pending.set(requestId, { type, volumeId, epoch, deadline, resolve, reject });
      this.writer.send(fields, payload);
    });
  }

  private allocateId(): number {
    let id = this.nextId;
    while (this.pending.has(id)) id = (id + 1) >>> 0;
    this.nextId = (id + 1) >>> 0;
    return id;
  }

  private onData(chunk: Buffer): void {
    if (this.state === "closed") return;
    this.queue.push(chunk);
    while (!this.socket.destroyed) {
      const result = this.decoder.next();
      if (result.kind === "incomplete") return;
      if (result.kind === "fatal") {
        this.log.error({ reason: result.reason, ...result.detail }, "replication: bad frame from replica");
        this.abort(new ReplicaUnavailableError("protocol-error", `${this.peer}: ${result.reason}`));
        return;
      }
      const frame = result.frame;
      if (frame.type === FrameType.ERROR) this.onErrorFrame(frame);
      else if (this.state === "auth") this.authenticate(frame);
      else this.onReply(frame);
    }
  }

  private authenticate(frame: Frame): void {
    const step = this.handshake.step(frame);
    if (step.kind === "refuse") {
      this.writer.send(controlFields(FrameType.ERROR, Status.AUTH_FAILED), Buffer.from(step.reason));
      this.writer.flush();
      this.log.error({ reason: step.reason }, "replication: replica failed authentication");
      this.fail(new ReplicaAuthError(`${this.peer}: ${step.reason}`));
      // Ended, not destroyed, so the ERROR frame reaches the server and it can log why.
      this.socket.end();
      setTimeout(() => this.socket.destroy(), CLOSE_GRACE_MS).unref();
      return;
    }
    if (step.kind === "send") {
      this.writer.send(controlFields(step.type, Status.OK), step.payload);
      return;
    }
    this.state = "ready";
    this.decoder.maxPayload = MAX_IO_BYTES;
    this.settleReady();
  }

  private onReply(frame: Frame): void {
    const pending = this.pending.get(frame.requestId);
    if (pending === undefined || frame.type !== (pending.type | REPLY_BIT)) {
      this.log.error({ requestId: frame.requestId, type: frame.type }, "replication: reply to no request");
      this.abort(new ReplicaUnavailableError("protocol-error", `${this.peer}: reply to no request`));
      return;
    }
    this.pending.delete(frame.requestId);
    if (frame.status === Status.OK) pending.resolve(frame);
    else pending.reject(replyError(frame.status, pending, frame.epoch, frame.payload.toString("utf8")));
  }

  /** The server refuses us and closes: before authentication that is a secret mismatch. */
  private onErrorFrame(frame: Frame): void {
    const reason = `${this.peer} closed the connection: ${frame.payload.toString("utf8")}`;
    this.log.error({ status: frame.status, reason }, "replication: refused by the replica");
    const error =
      frame.status === Status.AUTH_FAILED
        ? new ReplicaAuthError(reason)
        : new ReplicaUnavailableError("protocol-error", reason);
    this.abort(error);
  }

  /**
   * A request past its deadline fails the whole connection, not just itself: the replica counts
   * as failed (the coordinator removes it), and destroying the socket is the only way to be sure
   * no buffer of a request that has settled is still waiting to be sent.
   */
  private sweep(): void {
    const oldest = this.pending.values().next();
    if (oldest.done || oldest.value.deadline > performance.now()) return;
    this.log.warn(
      { timeoutMs: this.timeoutMs, inFlight: this.pending.size },
      "replication: replica timed out",
    );
    this.abort(new ReplicaUnavailableError("timeout", `${this.peer}: no reply within ${this.timeoutMs} ms`));
  }

  private abort(error: Error): void {
    this.fail(error);
    this.socket.destroy();
  }

  /** Records why the connection is unusable and settles everything waiting on it. */
  private fail(error: Error): void {
    this.failure ??= error;
    if (this.state === "auth") this.settleReady(this.failure);
    if (this.state !== "closed") this.state = "closing";
    if (this.pending.size === 0) return;
    const waiting = [...this.pending.values()];
    this.pending.clear();
    // In-flight requests fail as "unavailable" even when the cause was an auth or protocol error:
    // for the coordinator all of them mean this replica cannot be counted on.
    const unavailable =
      this.failure instanceof ReplicaUnavailableError
        ? this.failure
        : new ReplicaUnavailableError("connection-lost", this.failure.message);
    for (const pending of waiting) pending.reject(unavailable);
  }
}

function checkU53(value: number): void {
  if (!Number.isSafeInteger(value) || value < 0)
    throw new RangeError(`not a 53-bit unsigned integer: ${value}`);
}

function checkLength(length: number, max: number): void {
  if (!Number.isInteger(length) || length <= 0 || length > max) {
    throw new RangeError(`a length must be in 1..${max}, not ${length}`);
  }
}

function parseJson<T>(schema: z.ZodType<T>, payload: Buffer, what: string): T {
  let json: unknown;
  try {
    json = JSON.parse(payload.toString("utf8"));
  } catch {
    throw new BlockIoError("EIO", `${what} reply is not JSON`);
  }
  const parsed = schema.safeParse(json);
  if (!parsed.success) throw new BlockIoError("EIO", `${what} reply: ${parsed.error.message}`);
  return parsed.data;
}
