/**
 * The node's local replicas on its pool, whoever asked for them: this node's volume service, or a
 * coordinator on another node over the replication protocol (CREATE_REPLICA and friends). Each replica lives in <drive>/volumes/<volumeId>/ — the
 * layout single-node agents always had, so existing data dirs keep working.
 *
 * Crash safety, without renaming a replica's directory while it is open:
 * - create: the directory gets a "creating" marker (durable) before any replica file and loses it
 *   last, after the caller's own files (volume.json) are written. A directory still marked, or
 *   without a replica manifest, is a create a crash interrupted: removed at the next open.
 * - destroy: renamed to <volumeId>.deleting first (the commit point), then removed; a leftover
 *   .deleting directory is finished at the next open.
 * - the rebuild mark is a durable marker file too, so a restart never makes a replica whose copy
 *   was not finished readable.
 */
import { mkdir, open, readdir, rename, rm, stat } from "node:fs/promises";
import { join } from "node:path";
import { invalid, StrataError } from "../core/errors.js";
import { overProvisioningPercent, whyNoRoom } from "../core/placement.js";
import { formatSize } from "../core/units.js";
import { syncDirectory } from "./durable-file.js";
import type { Logger } from "./log.js";
import { Mutex } from "./mutex.js";
import type { Drive, Pool } from "./pool.js";
import {
  REPLICA_ID_PATTERN,
  type ReplicaAdmin,
  type ReplicaInfo,
  type ReplicaSpec,
} from "./replication/replica-admin.js";
import { servedEntry } from "./replication/server/served-entries.js";
import { MANIFEST_FILE } from "./store/manifest.js";
import { Replica } from "./store/replica.js";

/** Where replicas live on each drive; the name predates replication and stays for existing data dirs. */
export const REPLICAS_DIR = "volumes";
/** A directory renamed to this suffix is being destroyed; the next open finishes the job. */
const DELETING_SUFFIX = ".deleting";
/** Present while a create is not finished; a directory still holding it after a crash is removed. */
const CREATING_MARKER = "replica-creating";
/** Present while the replica is a rebuild target: write-only, its data incomplete. */
const REBUILDING_MARKER = "replica-rebuilding";

interface Hosted {
  replica: Replica;
  drive: Drive;
  dir: string;
}

export interface BuildOptions {
  /**
   * Runs after the replica is made and before the create is committed, to write the caller's own
   * files next to it: a crash before the commit removes both.
   */
  beforeCommit?: (dir: string) => Promise<void>;
}

/** Makes a replica in the (new, empty, marked) directory `dir` on `drive`. */
export type ReplicaMaker = (dir: string, drive: Drive) => Promise<Replica>;

export class ReplicaHost implements ReplicaAdmin {
  private readonly hosted = new Map<string, Hosted>();
  /** Creates and destroys run one at a time, so a volume id is checked and taken atomically. */
  private readonly namespace = new Mutex();

  private constructor(
    private readonly pool: Pool,
    private readonly log: Logger,
  ) {}

  /** Opens every replica on the pool's drives, finishing the creates and destroys a crash interrupted. */
  static async open(pool: Pool, log: Logger): Promise<ReplicaHost> {
    const host = new ReplicaHost(pool, log);
    for (const drive of pool.drives) {
      const root = join(drive.path, REPLICAS_DIR);
      await mkdir(root, { recursive: true });
      for (const name of (await readdir(root)).sort()) await host.openDir(drive, root, name);
    }
    return host;
  }

  private async openDir(drive: Drive, root: string, name: string): Promise<void> {
    const dir = join(root, name);
    if (name.endsWith(DELETING_SUFFIX)) {
      this.log.info({ dir }, "finishing a replica delete interrupted by a restart");
      await rm(dir, { recursive: true, force: true });
      return;
    }
    if (!(await stat(dir)).isDirectory()) {
      this.log.warn({ path: dir }, "ignoring a file among the replica directories");
      return;
    }
    const files = new Set(await readdir(dir));
    if (files.has(CREATING_MARKER) || !files.has(MANIFEST_FILE)) {
      this.log.warn({ dir }, "removing a replica whose creation a restart interrupted");
      await Replica.destroy(dir, drive);
      return;
    }
    const replica = await Replica.open(dir, { allocator: drive, log: this.log });
    if (files.has(REBUILDING_MARKER)) servedEntry(replica).rebuilding = true;
    this.hosted.set(name, { replica, drive, dir });
  }

  /** The replica of `volumeId` on this node, if any. */
  get(volumeId: string): Replica | undefined {
    return this.hosted.get(volumeId)?.replica;
  }

  /** The directory holding the replica of `volumeId` (callers keep their own files there). */
  dirOf(volumeId: string): string | undefined {
    return this.hosted.get(volumeId)?.dir;
  }

  list(): Replica[] {
    return [...this.hosted.values()].map((hosted) => hosted.replica);
  }

  /** Creates an empty replica on the drive with the most free space. Refused if the volume has one here. */
  create(
    volumeId: string,
    replicaId: string,
    sizeBytes: number,
    epoch: number,
    options: BuildOptions = {},
  ): Promise<Replica> {
    return this.namespace.run(() => {
      this.requireRoom(sizeBytes);
      return this.buildUnlocked(
        volumeId,
        this.emptyReplica({ volumeId, replicaId, sizeBytes, epoch }),
        options,
      );
    });
  }

  /**
   * Refuses a new replica the pool has no room for, before any file is made: the node-level side
   * of placement's rule (core/placement.ts whyNoRoom), so a replica that placement judged on a
   * stale record, or that came without placement, is refused in one sentence, not with EFBIG.
   */
  private requireRoom(sizeBytes: number): void {
    const provisioned = this.list().reduce((sum, replica) => sum + replica.sizeBytes, 0);
    const reasons = whyNoRoom(this.pool.usage(provisioned), sizeBytes, overProvisioningPercent());
    if (reasons.length > 0) {
      throw new StrataError(
        "RESOURCE_EXHAUSTED",
        `this node has no room for a ${formatSize(sizeBytes)} volume: ${reasons.join(", ")}`,
      );
    }
  }

  private emptyReplica(spec: ReplicaSpec): ReplicaMaker {
    return (dir, drive) => Replica.create(dir, { ...spec, allocator: drive, log: this.log });
  }

  /** Creates a replica with `make` (a clone, say) under the same crash-safe protocol as create. */
  build(volumeId: string, make: ReplicaMaker, options: BuildOptions = {}): Promise<Replica> {
    return this.namespace.run(() => this.buildUnlocked(volumeId, make, options));
  }

  private async buildUnlocked(volumeId: string, make: ReplicaMaker, options: BuildOptions): Promise<Replica> {
    checkId("volume", volumeId);
    const existing = this.hosted.get(volumeId);
    if (existing !== undefined) {
      throw new StrataError(
        "ALREADY_EXISTS",
        `volume ${volumeId} already has replica ${existing.replica.replicaId} on this node`,
      );
    }
    const drive = this.pool.pickDrive();
    const root = join(drive.path, REPLICAS_DIR);
    const dir = join(root, volumeId);
    await mkdir(dir);
    let replica: Replica | undefined;
    try {
      await writeMarker(dir, CREATING_MARKER);
      await syncDirectory(root);
      replica = await make(dir, drive);
      await options.beforeCommit?.(dir);
      await removeMarker(dir, CREATING_MARKER);
    } catch (error) {
      await replica?.close();
      await Replica.destroy(dir, drive);
      throw error;
    }
    this.hosted.set(volumeId, { replica, drive, dir });
    this.log.info({ volumeId, replicaId: replica.replicaId, dir }, "replica created");
    return replica;
  }

  /**
   * Closes and deletes the replica of `volumeId`; nothing to do when there is none (idempotent).
   * Once the rename to .deleting is durable the replica is gone, whatever happens next.
   */
  async destroy(volumeId: string): Promise<void> {
    await this.namespace.run(() => this.destroyUnlocked(volumeId));
  }

  /** False when there was no replica of `volumeId`. */
  private async destroyUnlocked(volumeId: string): Promise<boolean> {
    const hosted = this.hosted.get(volumeId);
    if (hosted === undefined) return false;
    const doomed = `${hosted.dir}${DELETING_SUFFIX}`;
    await rename(hosted.dir, doomed);
    await syncDirectory(join(hosted.drive.path, REPLICAS_DIR));
    this.hosted.delete(volumeId);
    await hosted.replica.close({ flush: false });
    await Replica.destroy(doomed, hosted.drive);
    this.log.info({ volumeId, replicaId: hosted.replica.replicaId }, "replica deleted");
    return true;
  }

  /** Closes every replica (flushing it); the agent calls this last on shutdown. */
  async close(): Promise<void> {
    await this.namespace.run(async () => {
      for (const hosted of this.hosted.values()) await hosted.replica.close();
      this.hosted.clear();
    });
  }

  // ---- ReplicaAdmin: what peers ask over the replication protocol ----

  createReplica(spec: ReplicaSpec): Promise<ReplicaInfo> {
    return this.namespace.run(async () => {
      checkId("replica", spec.replicaId);
      const existing = this.hosted.get(spec.volumeId)?.replica;
      if (existing?.replicaId === spec.replicaId) return replicaInfo(existing);
      this.requireRoom(spec.sizeBytes);
      return replicaInfo(await this.buildUnlocked(spec.volumeId, this.emptyReplica(spec), {}));
    });
  }

  deleteReplica(volumeId: string, replicaId: string): Promise<boolean> {
    return this.namespace.run(async () => {
      if (this.hosted.get(volumeId)?.replica.replicaId !== replicaId) return false;
      return this.destroyUnlocked(volumeId);
    });
  }

  async setRebuilding(volumeId: string, rebuilding: boolean): Promise<void> {
    const hosted = this.hosted.get(volumeId);
    if (hosted === undefined) throw new StrataError("NOT_FOUND", `no replica of volume ${volumeId} here`);
    const entry = servedEntry(hosted.replica);
    // Persisted before reads are refused, cleared after they are allowed again: a crash in
    // between leaves the replica marked, which only costs a rebuild that was not needed.
    if (rebuilding) {
      await writeMarker(hosted.dir, REBUILDING_MARKER);
      entry.rebuilding = true;
    } else {
      await removeMarker(hosted.dir, REBUILDING_MARKER);
      entry.rebuilding = false;
    }
    this.log.info({ volumeId, rebuilding }, "replica rebuild mark changed");
  }

  listReplicas(volumeId?: string): ReplicaInfo[] {
    const replicas =
      volumeId === undefined ? this.list() : [this.get(volumeId)].filter((r) => r !== undefined);
    return replicas.map(replicaInfo);
  }
}

export function replicaInfo(replica: Replica): ReplicaInfo {
  return {
    volumeId: replica.volumeId,
    replicaId: replica.replicaId,
    epoch: replica.epoch,
    sizeBytes: replica.sizeBytes,
    allocatedBytes: replica.allocatedBytes,
    rebuilding: servedEntry(replica).rebuilding,
  };
}

function checkId(what: string, id: string): void {
  if (!REPLICA_ID_PATTERN.test(id)) {
    throw invalid(
      `a ${what} id is 1-128 letters, digits, '-' or '_' (starting with a letter or digit), not "${id}"`,
    );
  }
}

/** Creates an empty marker file and makes its existence durable. */
async function writeMarker(dir: string, name: string): Promise<void> {
  const handle = await open(join(dir, name), "w");
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
  await syncDirectory(dir);
}

async function removeMarker(dir: string, name: string): Promise<void> {
  await rm(join(dir, name), { force: true });
  await syncDirectory(dir);
}
