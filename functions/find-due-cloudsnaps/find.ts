import { z } from "zod";
import { eachConcurrently } from "../../core/concurrency.js";
import {
  type PolicyAssignment,
  SCHEDULE_KINDS_COARSEST_FIRST,
  type ScheduleKind,
  type SchedulePolicy,
  scheduledSnapshotName,
  scheduleOfSnapshot,
} from "../../core/schedule-policies.js";
import { RecordNotFoundError } from "../../core/state/errors.js";
import { isFinished } from "../../core/state/operations.js";
import {
  MAX_EXPIRED_PER_OPERATION,
  MAX_GROUP_VOLUMES,
  type NodeRecord,
  type OperationKind,
  type VolumeRecord,
} from "../../core/state/records.js";
import type { StateStore } from "../../core/state/store.js";
import { expiredCopies } from "../apply-retention/retention.js";
import type { CloudsnapCatalogs } from "../shared/cloudsnap-catalogs.js";
import type { ClusterAccess } from "../shared/cluster.js";
import { liveNodeFor } from "../shared/nodes.js";
import { requestToken } from "../shared/request-tokens.js";
import { type DueSchedule, dueSchedule, type ScheduledCopy } from "./schedule.js";

export const FindDueInput = z.object({
  /**
   * The execution's start ($$.Execution.StartTime): the clock the schedules are judged by, so a
   * retried task finds the same volumes due in the same slots.
   */
  at: z.iso.datetime({ offset: true }),
});
export type FindDueInput = z.infer<typeof FindDueInput>;

/** An operation as start-operation takes it. */
interface OperationStart {
  kind: Extract<OperationKind, "cloudsnap" | "scheduled-snapshot">;
  volume: string;
  node: string;
  requestToken: string;
  params: Record<string, unknown>;
}

/**
 * One item of the workflow's Map: a volume to upload (`copy: "cloudsnap"`) or a volume and its group
 * to snapshot (`copy: "snapshot"`), and how to try once more if it fails.
 */
export interface DueCopy {
  copy: "cloudsnap" | "snapshot";
  volume: string;
  volumeId: string;
  policy: string;
  schedule: ScheduleKind;
  slot: string;
  operation: OperationStart;
  /** The same work under a new token: a failed operation stays failed under its own. */
  secondAttempt: OperationStart;
}

export interface DueCopies {
  due: DueCopy[];
  /** Volumes with a policy that were not started, and why (no live node, an upload still running). */
  skipped: { volume: string; reason: string }[];
}

/** The kinds that change a volume's catalog: while one runs, the volume waits for the next run. */
const CATALOG_WRITERS: ReadonlySet<OperationKind> = new Set(["cloudsnap", "cloudsnap-retention"]);
/** Catalogs (one GET each) and snapshot lists (one Query each) read at once. */
const READ_CONCURRENCY = 8;

interface Following {
  assignment: PolicyAssignment;
  volume: VolumeRecord;
  policy: SchedulePolicy;
}

/**
 * The volumes whose policy has a schedule due (see dueSchedule), read from the policies, the
 * assignments (one Query: volumes without a policy are never read), each assigned volume's catalog
 * (cloudsnap schedules) and snapshots (snapshot schedules). A cloudsnap is started on the node the
 * volume is attached to, which reads it through its coordinator, else on a live node holding one of
 * its replicas; a group's snapshot where its volumes are attached, else likewise. An assignment
 * whose volume is gone is deleted: nothing else would ever remove it.
 */
export async function findDueCloudsnaps(
  input: FindDueInput,
  cluster: ClusterAccess,
  catalogs: CloudsnapCatalogs,
): Promise<DueCopies> {
  const now = new Date(input.at);
  const { store } = cluster;
  const [policies, assignments, volumes, nodes, operations] = await Promise.all([
    store.policies.list(),
    store.policies.assignments(),
    store.volumes.list(),
    store.nodes.list(),
    store.operations.list(),
  ]);
  const running = (kinds: ReadonlySet<OperationKind>) =>
    new Set(operations.filter((op) => kinds.has(op.kind) && !isFinished(op)).map((op) => op.volumeId));
  const result: DueCopies = { due: [], skipped: [] };
  const following: Following[] = [];
  for (const assignment of assignments) {
    const volume = volumes.find((candidate) => candidate.id === assignment.volumeId);
    const policy = policies.find((candidate) => candidate.name === assignment.policy);
    if (volume === undefined) await dropIfVolumeGone(store, assignment);
    // A policy deleted as it was assigned (no transactions): nothing to take.
    if (volume === undefined || policy === undefined) continue;
    following.push({ assignment, volume, policy });
  }
  const chooser = nodeChooser(nodes, cluster);
  await findDueCloudsnapsOf(following, running(CATALOG_WRITERS), catalogs, now, chooser, result);
  await findDueSnapshotsOf(following, running(new Set(["scheduled-snapshot"])), store, now, chooser, result);
  return result;
}

/**
 * Deletes the assignment of a volume that is gone. Read again first: the volume list was read
 * before the assignments, so a volume created and assigned in between is not in it.
 */
async function dropIfVolumeGone(store: StateStore, assignment: PolicyAssignment): Promise<void> {
  const gone = await store.volumes.get(assignment.volumeId).then(
    () => false,
    (error: unknown) => {
      if (error instanceof RecordNotFoundError) return true;
      throw error;
    },
  );
  if (gone) await store.policies.unassign(assignment.volumeId);
}

type NodeChooser = (volumes: readonly VolumeRecord[]) => { node: string } | { reason: string };

/**
 * Where volumes taken together run: the node they are attached to (a group attached to two nodes
 * cannot be snapshotted at one point), else a live node holding a replica of the first.
 */
function nodeChooser(nodes: readonly NodeRecord[], cluster: ClusterAccess): NodeChooser {
  const liveness = cluster.liveness();
  return (volumes) => {
    const attached = [...new Set(volumes.flatMap((volume) => volume.attachedNode ?? []))];
    if (attached.length > 1) {
      return { reason: `its group's volumes are attached to different nodes (${attached.join(", ")})` };
    }
    const [first] = volumes;
    const node =
      attached[0] ??
      liveNodeFor(
        nodes,
        liveness,
        first!.id,
        first!.replicas.map((replica) => replica.node),
      );
    return node === undefined ? { reason: "no node is live to take it" } : { node };
  };
}

/** Reads `read(item)` for every item, a few at a time, into a map keyed by `key(item)`. */
async function readAll<T, R>(
  items: readonly T[],
  key: (item: T) => string,
  read: (item: T) => Promise<R>,
): Promise<Map<string, R>> {
  const found = new Map<string, R>();
  await eachConcurrently(items, READ_CONCURRENCY, async (item) => {
    found.set(key(item), await read(item));
  });
  return found;
}

/** The item of one due copy, with its two attempts' operations. */
function dueCopy(
  copy: DueCopy["copy"],
  { volume, policy }: Following,
  due: DueSchedule,
  start: (attempt: string) => OperationStart,
): DueCopy {
  return {
    copy,
    volume: volume.name,
    volumeId: volume.id,
    policy: policy.name,
    schedule: due.schedule,
    slot: due.slot.toISOString(),
    operation: start("1"),
    secondAttempt: start("2"),
  };
}

async function findDueCloudsnapsOf(
  following: readonly Following[],
  busy: ReadonlySet<string>,
  catalogs: CloudsnapCatalogs,
  now: Date,
  chooseNode: NodeChooser,
  result: DueCopies,
): Promise<void> {
  const scheduled = following.filter(({ policy }) => policy.schedules !== undefined);
  for (const { volume } of scheduled.filter(({ volume }) => busy.has(volume.id))) {
    result.skipped.push({ volume: volume.name, reason: "a cloudsnap or retention of it is still running" });
  }
  const ready = scheduled.filter(({ volume }) => !busy.has(volume.id));
  const read = await readAll(
    ready,
    ({ volume }) => volume.id,
    ({ volume }) => catalogs(volume.id),
  );
  for (const item of ready) {
    const { volume, assignment, policy } = item;
    const due = dueSchedule(policy.schedules!, read.get(volume.id)!, now);
    if (due === undefined) continue;
    const chosen = chooseNode([volume]);
    if ("reason" in chosen) {
      result.skipped.push({ volume: volume.name, reason: chosen.reason });
      continue;
    }
    const slot = due.slot.toISOString();
    result.due.push(
      dueCopy("cloudsnap", item, due, (attempt) => ({
        kind: "cloudsnap",
        volume: volume.name,
        node: chosen.node,
        requestToken: requestToken("cloudsnap", volume.id, due.schedule, slot, attempt),
        params: {
          schedule: due.schedule,
          ...(assignment.group === undefined ? {} : { group: assignment.group }),
        },
      })),
    );
  }
}

/**
 * Snapshot schedules: the volumes of one group (same policy, same group) are snapshotted together,
 * in one operation, when a schedule is due for any of them; a volume without a group alone.
 */
async function findDueSnapshotsOf(
  following: readonly Following[],
  busy: ReadonlySet<string>,
  store: StateStore,
  now: Date,
  chooseNode: NodeChooser,
  result: DueCopies,
): Promise<void> {
  const groups = new Map<string, Following[]>();
  for (const item of following.filter(({ policy }) => policy.snapshots !== undefined)) {
    const key = `${item.policy.name}/${item.assignment.group ?? `volume:${item.volume.id}`}`;
    groups.set(key, [...(groups.get(key) ?? []), item]);
  }
  const members = [...groups.values()].flat();
  const snapshots = await readAll(
    members,
    ({ volume }) => volume.id,
    async ({ volume }) =>
      (await store.snapshots.list(volume.id))
        .map((snapshot) => ({ ...snapshot, schedule: scheduleOfSnapshot(snapshot.name) }))
        .filter((snapshot) => snapshot.schedule !== undefined)
        .sort((a, b) => a.createdAt.localeCompare(b.createdAt)),
  );
  for (const group of groups.values()) {
    group.sort((a, b) => a.volume.name.localeCompare(b.volume.name));
    const first = group[0]!;
    const schedules = first.policy.snapshots!;
    if (group.some(({ volume }) => busy.has(volume.id))) {
      result.skipped.push({
        volume: first.volume.name,
        reason: "a scheduled snapshot of it is still running",
      });
      continue;
    }
    if (group.length > MAX_GROUP_VOLUMES) {
      result.skipped.push({
        volume: first.volume.name,
        reason: `its group "${first.assignment.group}" has ${group.length} volumes: at most ${MAX_GROUP_VOLUMES} are snapshotted together`,
      });
      continue;
    }
    const due = coarsestDue(
      group.map(({ volume }) => dueSchedule(schedules, snapshots.get(volume.id)!, now)),
    );
    if (due === undefined) continue;
    const chosen = chooseNode(group.map(({ volume }) => volume));
    if ("reason" in chosen) {
      result.skipped.push({ volume: first.volume.name, reason: chosen.reason });
      continue;
    }
    const snapshot = scheduledSnapshotName(due.schedule, due.slot);
    const taken: ScheduledCopy = { createdAt: now.toISOString(), schedule: due.schedule };
    const expire = group
      .flatMap(({ volume }) => {
        const made = snapshots.get(volume.id)!.map((copy) => ({ ...copy, id: copy.name }));
        const withNew = made.some((copy) => copy.id === snapshot)
          ? made
          : [...made, { ...taken, id: snapshot }];
        return expiredCopies(schedules, withNew, now).map((expired) => ({
          volume: volume.name,
          snapshot: expired,
        }));
      })
      .slice(0, MAX_EXPIRED_PER_OPERATION);
    const others = group.slice(1).map(({ volume }) => volume.name);
    const slot = due.slot.toISOString();
    result.due.push(
      dueCopy("snapshot", first, due, (attempt) => ({
        kind: "scheduled-snapshot",
        volume: first.volume.name,
        node: chosen.node,
        requestToken: requestToken("snapshot", first.volume.id, due.schedule, slot, attempt),
        params: {
          snapshot,
          schedule: due.schedule,
          ...(others.length === 0 ? {} : { with: others }),
          ...(expire.length === 0 ? {} : { expire }),
        },
      })),
    );
  }
}

/** Of the schedules due for a group's volumes, the coarsest (they share a policy, so its slot too). */
function coarsestDue(dues: readonly (DueSchedule | undefined)[]): DueSchedule | undefined {
  for (const kind of SCHEDULE_KINDS_COARSEST_FIRST) {
    const due = dues.find((candidate) => candidate?.schedule === kind);
    if (due !== undefined) return due;
  }
  return undefined;
}
