/**
 * The replica server's side of replica management (CREATE_REPLICA, DELETE_REPLICA,
 * SET_REBUILDING, LIST_REPLICAS, ALLOCATED_RUNS, CHANGED_RUNS) and of the chain changes a
 * coordinator fans out (RESIZE_REPLICA, DELETE_SNAPSHOT, REVERT_REPLICA), and the snapshot
 * reads a clone makes (SNAPSHOT_RUNS, READ_SNAPSHOT): shape checks and execution. The peer has
 * authenticated like for any request; these frames only decide what the node's ReplicaAdmin does.
 */
import type { z } from "zod";
import { StrataError } from "../../../core/errors.js";
import {
  ChangedRunsPayload,
  CreateReplicaPayload,
  DeleteReplicaPayload,
  type ReplicaAdmin,
  ResizeReplicaPayload,
  runsPage,
  SetRebuildingPayload,
  SnapshotPayload,
  SnapshotRunsPayload,
} from "../replica-admin.js";
import type { Frame } from "../wire/frame-codec.js";
import { FrameType, MAX_CONTROL_PAYLOAD, MAX_IO_BYTES, Status } from "../wire/protocol.js";
import { asRefusal, Refusal } from "./refusal.js";
import { EpochMismatch, type ServedReplicaEntry } from "./served-replica.js";

/** The management frame types; every one takes no flags. */
export const ADMIN_TYPES: ReadonlySet<number> = new Set([
  FrameType.CREATE_REPLICA,
  FrameType.DELETE_REPLICA,
  FrameType.SET_REBUILDING,
  FrameType.LIST_REPLICAS,
  FrameType.ALLOCATED_RUNS,
  FrameType.CHANGED_RUNS,
  FrameType.RESIZE_REPLICA,
  FrameType.DELETE_SNAPSHOT,
  FrameType.REVERT_REPLICA,
  FrameType.SNAPSHOT_RUNS,
  FrameType.READ_SNAPSHOT,
]);

/** Types that make sense without a replica of the header's volume here (the others need one). */
export const NEED_NO_REPLICA: ReadonlySet<number> = new Set([
  FrameType.CREATE_REPLICA,
  FrameType.DELETE_REPLICA,
  FrameType.LIST_REPLICAS,
]);

/** Why a management frame cannot be run whatever the node holds, or undefined. */
export function checkAdminShape(frame: Frame): string | undefined {
  const payload = frame.payload.length;
  const noRange = frame.offset === 0 && frame.length === 0;
  switch (frame.type) {
    case FrameType.CREATE_REPLICA:
    case FrameType.DELETE_REPLICA:
    case FrameType.SET_REBUILDING:
    case FrameType.RESIZE_REPLICA:
    case FrameType.DELETE_SNAPSHOT:
    case FrameType.REVERT_REPLICA:
      return payload > 0 && payload <= MAX_CONTROL_PAYLOAD && noRange && frame.volumeId !== ""
        ? undefined
        : "needs a volume id, a small JSON payload and no range";
    case FrameType.LIST_REPLICAS:
      return payload === 0 && noRange ? undefined : "LIST_REPLICAS takes no range or payload";
    case FrameType.CHANGED_RUNS:
    case FrameType.SNAPSHOT_RUNS:
      return payload > 0 && payload <= MAX_CONTROL_PAYLOAD && frame.length === 0
        ? undefined
        : "takes an offset and a small JSON payload";
    case FrameType.READ_SNAPSHOT:
      return payload > 0 && payload <= MAX_CONTROL_PAYLOAD && frame.length > 0 && frame.length <= MAX_IO_BYTES
        ? undefined
        : `READ_SNAPSHOT takes a range of at most ${MAX_IO_BYTES} bytes and a small JSON payload`;
    default: // ALLOCATED_RUNS: the offset is where the page starts
      return payload === 0 && frame.length === 0 ? undefined : "ALLOCATED_RUNS takes an offset only";
  }
}

/**
 * Runs one well-formed management request; resolves to the reply's JSON payload. `entry` is the
 * served replica of the header's volume, when there is one here.
 */
export async function runAdmin(
  frame: Frame,
  entry: ServedReplicaEntry | undefined,
  admin: ReplicaAdmin | undefined,
): Promise<Buffer> {
  try {
    const result = await execute(frame, entry, admin);
    // READ_SNAPSHOT answers with the data itself; every other management reply is JSON.
    return Buffer.isBuffer(result) ? result : Buffer.from(JSON.stringify(result));
  } catch (error) {
    throw asRefusal(error);
  }
}

async function execute(
  frame: Frame,
  entry: ServedReplicaEntry | undefined,
  admin: ReplicaAdmin | undefined,
): Promise<unknown> {
  const { volumeId, epoch } = frame;
  switch (frame.type) {
    case FrameType.CREATE_REPLICA: {
      const request = parsePayload(CreateReplicaPayload, frame);
      return managing(admin).createReplica({ volumeId, epoch, ...request });
    }
    case FrameType.DELETE_REPLICA: {
      const request = parsePayload(DeleteReplicaPayload, frame);
      return { deleted: await managing(admin).deleteReplica(volumeId, request.replicaId) };
    }
    case FrameType.LIST_REPLICAS:
      return { replicas: managing(admin).listReplicas(volumeId === "" ? undefined : volumeId) };
    case FrameType.SET_REBUILDING: {
      const { rebuilding } = parsePayload(SetRebuildingPayload, frame);
      const served = required(entry);
      // Under the epoch fence: a fenced coordinator cannot flip the mark, and the change waits
      // for an epoch change in progress, like any mutation.
      await served.mutate(epoch, async () => {
        if (admin === undefined) served.rebuilding = rebuilding;
        else await admin.setRebuilding(volumeId, rebuilding);
      });
      return {};
    }
    case FrameType.RESIZE_REPLICA: {
      const { sizeBytes } = parsePayload(ResizeReplicaPayload, frame);
      const served = required(entry);
      await served.mutate(epoch, () => served.replica.resize(sizeBytes));
      return {};
    }
    case FrameType.DELETE_SNAPSHOT:
    case FrameType.REVERT_REPLICA: {
      const { snapshotId } = parsePayload(SnapshotPayload, frame);
      const served = required(entry);
      const change = frame.type === FrameType.DELETE_SNAPSHOT ? "deleteSnapshot" : "revert";
      await served.mutate(epoch, () => withSnapshot(() => served.replica[change](snapshotId)));
      return {};
    }
    case FrameType.CHANGED_RUNS: {
      const { since } = parsePayload(ChangedRunsPayload, frame);
      return runsPage(fencedReader(entry, epoch).replica.changedSince(since), frame.offset);
    }
    case FrameType.SNAPSHOT_RUNS: {
      const { snapshotId, since } = parsePayload(SnapshotRunsPayload, frame);
      const { replica } = fencedReader(entry, epoch);
      return runsPage(await withSnapshot(async () => replica.snapshotRuns(snapshotId, since)), frame.offset);
    }
    case FrameType.READ_SNAPSHOT: {
      const { snapshotId } = parsePayload(SnapshotPayload, frame);
      const { replica } = fencedReader(entry, epoch);
      if (frame.offset + frame.length > replica.sizeBytes) {
        throw new Refusal(Status.BAD_REQUEST, "READ_SNAPSHOT range is outside the volume");
      }
      return withSnapshot(() => replica.readSnapshot(snapshotId, frame.offset, frame.length));
    }
    default: {
      // ALLOCATED_RUNS: a rebuilding replica is no source.
      const served = fencedReader(entry, epoch);
      if (served.rebuilding) throw new Refusal(Status.NOT_IN_SYNC, "the replica is being rebuilt");
      return runsPage(served.replica.allocatedRuns(), frame.offset);
    }
  }
}

/** The replica, for a request fenced like READ: epoch 0 asks unfenced, any other must be current. */
function fencedReader(entry: ServedReplicaEntry | undefined, epoch: number): ServedReplicaEntry {
  const served = required(entry);
  if (epoch !== 0 && epoch !== served.epoch) throw new EpochMismatch(epoch, served.epoch, "stale reader");
  return served;
}

function managing(admin: ReplicaAdmin | undefined): ReplicaAdmin {
  if (admin === undefined)
    throw new Refusal(Status.NOT_MANAGED, "this replica server does not manage replicas");
  return admin;
}

/** The dispatcher answers UNKNOWN_VOLUME before running a type that needs a replica. */
function required(entry: ServedReplicaEntry | undefined): ServedReplicaEntry {
  if (entry === undefined) throw new Refusal(Status.UNKNOWN_VOLUME, "no replica of that volume here");
  return entry;
}

/** A request's JSON payload checked against `schema`; BAD_REQUEST when it is not. */
export function parsePayload<T>(schema: z.ZodType<T>, frame: Frame): T {
  const what = frameName(frame.type);
  let json: unknown;
  try {
    json = JSON.parse(frame.payload.toString("utf8"));
  } catch {
    throw new Refusal(Status.BAD_REQUEST, `${what} payload is not JSON`);
  }
  const parsed = schema.safeParse(json);
  if (!parsed.success) throw new Refusal(Status.BAD_REQUEST, `${what} payload: ${parsed.error.message}`);
  return parsed.data;
}

function frameName(type: number): string {
  return Object.entries(FrameType).find(([, value]) => value === type)?.[0] ?? `type ${type}`;
}

/** Runs a change naming a snapshot; the store's NOT_FOUND is the protocol's UNKNOWN_SNAPSHOT. */
export async function withSnapshot<T>(work: () => Promise<T>): Promise<T> {
  try {
    return await work();
  } catch (error) {
    if (error instanceof StrataError && error.code === "NOT_FOUND") {
      throw new Refusal(Status.UNKNOWN_SNAPSHOT, error.message);
    }
    throw error;
  }
}
