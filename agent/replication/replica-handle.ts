/**
 * How a coordinator reaches one replica of its volume, local or remote, with the epoch passed on
 * every call (the coordinator owns the epoch; a handle keeps none). Both kinds fence the same way:
 * a mutation or read carrying an epoch that is not the replica's rejects with StaleEpochError and
 * changes nothing.
 */
import { StrataError } from "../../core/errors.js";
import type { ByteRange, WriteOptions, WriteZeroesOptions } from "../block-device.js";
import type { Replica, SnapshotInfo } from "../store/replica.js";
import type { ReplicaClient } from "./client.js";
import { StaleEpochError, UnknownSnapshotError } from "./errors.js";
import type { ReplicaAdmin } from "./replica-admin.js";
import { servedEntry } from "./server/served-entries.js";
import { EpochMismatch } from "./server/served-replica.js";

export interface SnapshotRequest {
  id: string;
  name: string;
}

/** Where a replica stands: its epoch, size, and whether it carries the rebuild mark (write-only). */
export interface ReplicaStanding {
  epoch: number;
  sizeBytes: number;
  rebuilding: boolean;
}

/** A replica in the coordinator's set: in sync, or write-only while it is rebuilt. */
export type ReplicaRole = "in-sync" | "rebuilding";

export interface ReplicaTarget {
  replicaId: string;
  nodeId: string;
  state: ReplicaRole;
  handle: ReplicaHandle;
}

export interface ReplicaHandle {
  /** True for the replica on this node: reads prefer it. */
  readonly local: boolean;
  /** The caller owns the returned buffer (it may come from agent/io-buffers.ts). */
  read(epoch: number, offset: number, length: number): Promise<Buffer>;
  /** Holds no reference to `data` once settled. */
  write(epoch: number, offset: number, data: Buffer, options: WriteOptions): Promise<void>;
  writeZeroes(epoch: number, offset: number, length: number, options: WriteZeroesOptions): Promise<void>;
  trim(epoch: number, offset: number, length: number, options: WriteOptions): Promise<void>;
  flush(epoch: number): Promise<void>;
  snapshot(epoch: number, request: SnapshotRequest): Promise<SnapshotInfo>;
  /** The replica's epoch and rebuild mark now. */
  standing(): Promise<ReplicaStanding>;
  /**
   * Sets or clears the rebuild mark (durable where the node keeps it), fenced by `epoch`: while it
   * is set the replica refuses reads, and a restart does not make it readable.
   */
  setRebuilding(epoch: number, rebuilding: boolean): Promise<void>;
  /** The ranges of the regions the replica changed at epoch `since` or later; fenced like a read. */
  changedRuns(epoch: number, since: number): Promise<ByteRange[]>;
  /** Grows the replica; fenced like a write. */
  resize(epoch: number, sizeBytes: number): Promise<void>;
  /** Deletes a snapshot; UnknownSnapshotError when the replica has none with that id. */
  deleteSnapshot(epoch: number, snapshotId: string): Promise<void>;
  /** Makes the live view the snapshot again (no I/O may run); UnknownSnapshotError when it lacks it. */
  revert(epoch: number, snapshotId: string): Promise<void>;
  /**
   * Where a snapshot's view holds data, or with `since` where it may differ from that older
   * snapshot's; fenced like a read; UnknownSnapshotError when it lacks either.
   */
  snapshotRuns(epoch: number, snapshotId: string, since?: string): Promise<ByteRange[]>;
  /** A snapshot's bytes; fenced like a read; UnknownSnapshotError when it lacks it. */
  readSnapshot(epoch: number, snapshotId: string, offset: number, length: number): Promise<Buffer>;
  /** Moves the replica from `expected` to `next` once every write admitted under `expected` is done. */
  setEpoch(expected: number, next: number): Promise<void>;
  /**
   * The ranges holding data (a rebuild copies only those), asked with `epoch` like a read;
   * undefined when the replica cannot say, and the rebuild then reads the whole volume. A handle
   * that knows at once may answer synchronously.
   */
  allocatedRuns(epoch: number): ByteRange[] | undefined | Promise<ByteRange[] | undefined>;
  /** Gives back what the handle owns (a remote handle's connection); the replica itself stays. */
  close(): Promise<void>;
}

/**
 * Turns the local fence's refusal, and the store's missing snapshot, into the errors a remote
 * replica answers with.
 */
async function fenced<T>(work: () => Promise<T>): Promise<T> {
  try {
    return await work();
  } catch (error) {
    if (error instanceof EpochMismatch) throw new StaleEpochError(error.requestEpoch, error.replicaEpoch);
    if (error instanceof StrataError && error.code === "NOT_FOUND")
      throw new UnknownSnapshotError(error.message);
    throw error;
  }
}

/** What persists a local replica's rebuild mark (the node's ReplicaHost). */
export type RebuildMarks = Pick<ReplicaAdmin, "setRebuilding">;

/**
 * This node's replica, written directly (no loopback TCP) but through the same epoch fence the
 * replica server uses, so a SET_EPOCH from another node's coordinator fences this one's local
 * writes too. The Replica stays the caller's: close() does not close it. Without `marks` the
 * rebuild mark is kept in memory only (like a replica server that manages no replicas).
 */
export function localReplicaHandle(replica: Replica, marks?: RebuildMarks): ReplicaHandle {
  const entry = servedEntry(replica);
  const readable = (epoch: number) => {
    if (epoch !== entry.epoch) throw new EpochMismatch(epoch, entry.epoch, "stale reader");
  };
  return {
    local: true,
    read: (epoch, offset, length) =>
      fenced(async () => {
        readable(epoch);
        return replica.read(offset, length);
      }),
    write: (epoch, offset, data, options) =>
      fenced(() => entry.mutate(epoch, () => replica.write(offset, data, options))),
    writeZeroes: (epoch, offset, length, options) =>
      fenced(() => entry.mutate(epoch, () => replica.writeZeroes(offset, length, options))),
    trim: (epoch, offset, length, options) =>
      fenced(() => entry.mutate(epoch, () => replica.trim(offset, length, options))),
    flush: (epoch) => fenced(() => entry.mutate(epoch, () => replica.flush())),
    snapshot: (epoch, request) =>
      fenced(() => entry.mutate(epoch, () => replica.snapshot(request.name, request.id))),
    standing: async () => ({
      epoch: replica.epoch,
      sizeBytes: replica.sizeBytes,
      rebuilding: entry.rebuilding,
    }),
    setEpoch: (expected, next) => fenced(() => entry.setEpoch(expected, next)),
    setRebuilding: (epoch, rebuilding) =>
      fenced(() =>
        entry.mutate(epoch, async () => {
          if (marks === undefined) entry.rebuilding = rebuilding;
          else await marks.setRebuilding(replica.volumeId, rebuilding);
        }),
      ),
    allocatedRuns: (epoch) =>
      fenced(async () => {
        readable(epoch);
        return Array.from(replica.allocatedRuns());
      }),
    changedRuns: (epoch, since) =>
      fenced(async () => {
        readable(epoch);
        return replica.changedSince(since);
      }),
    resize: (epoch, sizeBytes) => fenced(() => entry.mutate(epoch, () => replica.resize(sizeBytes))),
    deleteSnapshot: (epoch, id) => fenced(() => entry.mutate(epoch, () => replica.deleteSnapshot(id))),
    revert: (epoch, id) => fenced(() => entry.mutate(epoch, () => replica.revert(id))),
    snapshotRuns: (epoch, id, since) =>
      fenced(async () => {
        readable(epoch);
        return replica.snapshotRuns(id, since);
      }),
    readSnapshot: (epoch, id, offset, length) =>
      fenced(async () => {
        readable(epoch);
        return replica.readSnapshot(id, offset, length);
      }),
    close: async () => {},
  };
}

/** A replica on another node, over an authenticated connection this handle owns (close() closes it). */
export function remoteReplicaHandle(client: ReplicaClient, volumeId: string): ReplicaHandle {
  return {
    local: false,
    read: (epoch, offset, length) => client.read(volumeId, offset, length, { epoch }),
    write: (epoch, offset, data, options) => client.write(volumeId, epoch, offset, data, options),
    writeZeroes: (epoch, offset, length, options) =>
      client.writeZeroes(volumeId, epoch, offset, length, options),
    trim: (epoch, offset, length, options) => client.trim(volumeId, epoch, offset, length, options),
    flush: (epoch) => client.flush(volumeId, epoch),
    snapshot: (epoch, request) => client.snapshot(volumeId, epoch, request),
    standing: async () => {
      const { epoch, sizeBytes, rebuilding } = await client.getState(volumeId);
      return { epoch, sizeBytes, rebuilding };
    },
    setEpoch: (expected, next) => client.setEpoch(volumeId, expected, next),
    setRebuilding: (epoch, rebuilding) => client.setRebuilding(volumeId, epoch, rebuilding),
    changedRuns: (epoch, since) => client.changedRuns(volumeId, epoch, since),
    resize: (epoch, sizeBytes) => client.resizeReplica(volumeId, epoch, sizeBytes),
    deleteSnapshot: (epoch, id) => client.deleteSnapshot(volumeId, epoch, id),
    revert: (epoch, id) => client.revertReplica(volumeId, epoch, id),
    snapshotRuns: (epoch, id, since) => client.snapshotRuns(volumeId, epoch, id, since),
    readSnapshot: (epoch, id, offset, length) => client.readSnapshot(volumeId, epoch, id, offset, length),
    // Any failure (an older server without ALLOCATED_RUNS, the source going away) falls back to
    // reading the whole volume: the copy itself then handles a failed source, as it always did.
    allocatedRuns: (epoch) => client.allocatedRuns(volumeId, { epoch }).catch(() => undefined),
    close: () => client.close(),
  };
}
