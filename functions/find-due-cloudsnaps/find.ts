import { z } from "zod";
import { eachConcurrently } from "../../core/concurrency.js";
import {
  type PolicyAssignment,
  SCHEDULE_KINDS_COARSEST_FIRST,
  type ScheduleKind,
  type SchedulePolicy,
  type Schedules,
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
 * One item of the workflow's Map: a volume and its group to upload (`copy: "cloudsnap"`) or to
 * snapshot (`copy: "snapshot"`), and how to try once more if it fails.
 */
export interface DueCopy {
  copy: "cloudsnap" | "snapshot";
  volume: string;
  volumeId: string;
  /** The other volumes of its group, taken with it at one point of their write streams (else none). */
  with: { volume: string; volumeId: string }[];
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

/** The item of one due copy of a group (its first volume names it), with its two attempts' operations. */
function dueCopy(
  copy: DueCopy["copy"],
  group: readonly Following[],
  due: DueSchedule,
  start: (attempt: string) => OperationStart,
): DueCopy {
  const [first, ...others] = group;
  const { volume, policy } = first!;
  return {
    copy,
    volume: volume.name,
    volumeId: volume.id,
    with: others.map((other) => ({ volume: other.volume.name, volumeId: other.volume.id })),
    policy: policy.name,
    schedule: due.schedule,
    slot: due.slot.toISOString(),
    operation: start("1"),
    secondAttempt: start("2"),
  };
}

/**
 * The volumes that follow one policy in one group (`volume policy VOL POLICY --group G`) are taken
 * together, at one point of their write streams; a volume without a group alone. Sorted by name, so
 * a group's first volume, which names its operations, is the same from run to run.
 */
function groupsOf(following: readonly Following[]): Following[][] {
  const groups = new Map<string, Following[]>();
  for (const item of following) {
    const key = `${item.policy.name}/${item.assignment.group ?? `volume:${item.volume.id}`}`;
    groups.set(key, [...(groups.get(key) ?? []), item]);
  }
  return [...groups.values()].map((group) =>
    group.sort((a, b) => a.volume.name.localeCompare(b.volume.name)),
  );
}

/**
 * What every group's due copy needs: the copies made so far of each volume (`made`, read a few at a
 * time), the group not busy and not too large, the coarsest due schedule, a node to run on. `take`
 * builds the item; a group that cannot be taken is skipped with the reason.
 */
async function findDueOf<C extends ScheduledCopy>(
  groups: readonly Following[][],
  what: { busy: string; schedules: (policy: SchedulePolicy) => Schedules | undefined },
  busy: ReadonlySet<string>,
  made: (volume: VolumeRecord) => Promise<C[]>,
  now: Date,
  chooseNode: NodeChooser,
  result: DueCopies,
  take: (group: Following[], due: DueSchedule, made: Map<string, C[]>, node: string) => DueCopy,
): Promise<void> {
  const ready: Following[][] = [];
  for (const group of groups) {
    const first = group[0]!;
    if (group.some(({ volume }) => busy.has(volume.id))) {
      result.skipped.push({ volume: first.volume.name, reason: `${what.busy} is still running` });
    } else if (group.length > MAX_GROUP_VOLUMES) {
      result.skipped.push({
        volume: first.volume.name,
        reason: `its group "${first.assignment.group}" has ${group.length} volumes: at most ${MAX_GROUP_VOLUMES} are taken together`,
      });
    } else ready.push(group);
  }
  const copies = await readAll(
    ready.flat(),
    ({ volume }) => volume.id,
    ({ volume }) => made(volume),
  );
  for (const group of ready) {
    const schedules = what.schedules(group[0]!.policy)!;
    const due = coarsestDue(group.map(({ volume }) => dueSchedule(schedules, copies.get(volume.id)!, now)));
    if (due === undefined) continue;
    const chosen = chooseNode(group.map(({ volume }) => volume));
    if ("reason" in chosen) {
      result.skipped.push({ volume: group[0]!.volume.name, reason: chosen.reason });
      continue;
    }
    result.due.push(take(group, due, copies, chosen.node));
  }
}

/** Cloudsnap schedules: each group uploaded by one `cloudsnap` operation, its volumes snapshotted together. */
async function findDueCloudsnapsOf(
  following: readonly Following[],
  busy: ReadonlySet<string>,
  catalogs: CloudsnapCatalogs,
  now: Date,
  chooseNode: NodeChooser,
  result: DueCopies,
): Promise<void> {
  await findDueOf(
    groupsOf(following.filter(({ policy }) => policy.schedules !== undefined)),
    { busy: "a cloudsnap or retention of it", schedules: (policy) => policy.schedules },
    busy,
    (volume) => catalogs(volume.id),
    now,
    chooseNode,
    result,
    (group, due, _made, node) => {
      const [first, ...others] = group;
      const { volume, assignment } = first!;
      const slot = due.slot.toISOString();
      return dueCopy("cloudsnap", group, due, (attempt) => ({
        kind: "cloudsnap",
        volume: volume.name,
        node,
        requestToken: requestToken("cloudsnap", ...memberIds(group), due.schedule, slot, attempt),
        params: {
          schedule: due.schedule,
          ...(assignment.group === undefined ? {} : { group: assignment.group }),
          ...(others.length === 0 ? {} : { with: others.map((other) => other.volume.name) }),
        },
      }));
    },
  );
}

/** Snapshot schedules: each group snapshotted by one `scheduled-snapshot` operation, which also expires. */
async function findDueSnapshotsOf(
  following: readonly Following[],
  busy: ReadonlySet<string>,
  store: StateStore,
  now: Date,
  chooseNode: NodeChooser,
  result: DueCopies,
): Promise<void> {
  await findDueOf(
    groupsOf(following.filter(({ policy }) => policy.snapshots !== undefined)),
    { busy: "a scheduled snapshot of it", schedules: (policy) => policy.snapshots },
    busy,
    async (volume) =>
      (await store.snapshots.list(volume.id))
        .map((snapshot) => ({ ...snapshot, id: snapshot.name, schedule: scheduleOfSnapshot(snapshot.name) }))
        .filter((snapshot): snapshot is typeof snapshot & ScheduledCopy => snapshot.schedule !== undefined)
        .sort((a, b) => a.createdAt.localeCompare(b.createdAt)),
    now,
    chooseNode,
    result,
    (group, due, made, node) => {
      const [first, ...others] = group;
      const { volume, policy } = first!;
      const schedules = policy.snapshots!;
      const snapshot = scheduledSnapshotName(due.schedule, due.slot);
      const taken = { id: snapshot, createdAt: now.toISOString(), schedule: due.schedule };
      const expire = group
        .flatMap((member) => {
          const copies = made.get(member.volume.id)!;
          const withNew = copies.some((copy) => copy.id === snapshot) ? copies : [...copies, taken];
          return expiredCopies(schedules, withNew, now).map((expired) => ({
            volume: member.volume.name,
            snapshot: expired,
          }));
        })
        .slice(0, MAX_EXPIRED_PER_OPERATION);
      const slot = due.slot.toISOString();
      return dueCopy("snapshot", group, due, (attempt) => ({
        kind: "scheduled-snapshot",
        volume: volume.name,
        node,
        requestToken: requestToken("snapshot", ...memberIds(group), due.schedule, slot, attempt),
        params: {
          snapshot,
          schedule: due.schedule,
          ...(others.length === 0 ? {} : { with: others.map((other) => other.volume.name) }),
          ...(expire.length === 0 ? {} : { expire }),
        },
      }));
    },
  );
}

/**
 * What a group's tokens name: all its volumes, so a volume that joins the group within a slot makes
 * a new operation taking them all, not the one its first volume's earlier copy of that slot made.
 */
const memberIds = (group: readonly Following[]) => group.map(({ volume }) => volume.id);

/** Of the schedules due for a group's volumes, the coarsest (they share a policy, so its slot too). */
function coarsestDue(dues: readonly (DueSchedule | undefined)[]): DueSchedule | undefined {
  for (const kind of SCHEDULE_KINDS_COARSEST_FIRST) {
    const due = dues.find((candidate) => candidate?.schedule === kind);
    if (due !== undefined) return due;
  }
  return undefined;
}
