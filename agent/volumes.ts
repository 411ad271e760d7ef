import { randomUUID } from "node:crypto";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { z } from "zod";
import { conflict, invalid, notFound, StrataError } from "../core/errors.js";
import {
  type Attachment,
  type Labels,
  Labels as LabelsSchema,
  type NodeStatus,
  type PoolUsage,
  ResourceName,
  type Snapshot,
  type Volume,
} from "../core/model.js";
import { formatSize } from "../core/units.js";
import type { CreateVolume } from "../core/volume-service.js";
import { writeJsonAtomic } from "./durable-file.js";
import { countedLease, type ExportLease, type ExportRegistry } from "./exports.js";
import type { Logger } from "./log.js";
import { setPoolGaugeSource } from "./metrics.js";
import { Mutex } from "./mutex.js";
import type { Drive, Pool } from "./pool.js";
import { ReplicaHost } from "./replica-host.js";
import { Replica } from "./store/replica.js";

/** The volume's own record, next to its replica's files; the replica keeps its layer chain itself. */
const VolumeRecord = z.object({
  formatVersion: z.literal(1),
  id: z.string(),
  name: ResourceName,
  labels: LabelsSchema,
  createdAt: z.string(),
  attached: z.boolean(),
});
type VolumeRecord = z.infer<typeof VolumeRecord>;

const VOLUME_RECORD = "volume.json";
/** The replica of a single-node volume; replication (next issue) gives each replica its own id. */
const LOCAL_REPLICA_EPOCH = 1;

interface VolumeEntry {
  record: VolumeRecord;
  replica: Replica;
  /** The replica's directory (the ReplicaHost's), where the record lives too. */
  dir: string;
  /** Open NBD connections: a volume in use cannot be detached, deleted or reverted. */
  leases: number;
  lock: Mutex;
}

export interface NodeIdentity {
  nodeId: string;
  zone: string;
  version: string;
  startedAt: string;
}

export interface Endpoints {
  apiUrl: string;
  /** host:port of the NBD TCP listener. */
  nbdAddress: string;
  nbdSocket: string | null;
}

/**
 * The volumes of one agent: creates them on the pool, serves the control API's operations, and is
 * the registry the NBD server opens exports from. Each volume's replica directory is the
 * ReplicaHost's (it creates, opens and destroys it crash-safely); the volume's record
 * (volume.json, next to the replica's files) is this manager's. A replica without a record is not
 * a volume of this node: a peer's coordinator created it, and it is left to the host.
 */
export class VolumeManager implements ExportRegistry {
  private readonly byName = new Map<string, VolumeEntry>();
  /** Creates and clones are serialized so that a name is checked and taken atomically. */
  private readonly namespaceLock = new Mutex();
  endpoints: Endpoints = { apiUrl: "", nbdAddress: "", nbdSocket: null };

  private constructor(
    private readonly identity: NodeIdentity,
    private readonly pool: Pool,
    private readonly host: ReplicaHost,
    /** True when load() opened the host itself, so close() closes it too. */
    private readonly ownsHost: boolean,
    private readonly log: Logger,
  ) {}

  /**
   * Loads every volume on the pool's drives (the host, opened here unless given, has finished any
   * create or delete a crash interrupted).
   */
  static async load(
    identity: NodeIdentity,
    pool: Pool,
    log: Logger,
    host?: ReplicaHost,
  ): Promise<VolumeManager> {
    const manager = new VolumeManager(
      identity,
      pool,
      host ?? (await ReplicaHost.open(pool, log)),
      !host,
      log,
    );
    for (const replica of manager.host.list()) await manager.loadVolume(replica);
    setPoolGaugeSource({
      usage: () => pool.usage(manager.provisionedBytes()),
      volumeCount: () => manager.byName.size,
    });
    return manager;
  }

  private async loadVolume(replica: Replica): Promise<void> {
    const dir = this.host.dirOf(replica.volumeId)!;
    let text: string;
    try {
      text = await readFile(join(dir, VOLUME_RECORD), "utf8");
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== "ENOENT") throw error;
      this.log.debug({ dir }, "a replica without a volume record: a peer's, not a volume of this node");
      return;
    }
    const parsed = VolumeRecord.safeParse(JSON.parse(text));
    if (!parsed.success) {
      throw new Error(`${join(dir, VOLUME_RECORD)} is not a valid volume record: ${parsed.error.message}`);
    }
    this.addEntry(parsed.data, replica, dir);
  }

  private addEntry(record: VolumeRecord, replica: Replica, dir: string): VolumeEntry {
    const entry: VolumeEntry = { record, replica, dir, leases: 0, lock: new Mutex() };
    this.byName.set(record.name, entry);
    this.host.hold(record.id, `volume "${record.name}"`);
    return entry;
  }

  has(name: string): boolean {
    return this.byName.has(name);
  }

  private entry(name: string): VolumeEntry {
    const entry = this.byName.get(name);
    if (!entry) throw notFound(`volume "${name}"`);
    return entry;
  }

  private requireDetached(entry: VolumeEntry, action: string): void {
    if (entry.record.attached) {
      throw conflict(
        `cannot ${action} volume "${entry.record.name}": it is attached to ${this.identity.nodeId}; detach it first`,
      );
    }
  }

  private provisionedBytes(): number {
    let total = 0;
    for (const entry of this.byName.values()) total += entry.replica.sizeBytes;
    return total;
  }

  private toVolume(entry: VolumeEntry): Volume {
    const { record, replica } = entry;
    return {
      id: record.id,
      name: record.name,
      sizeBytes: replica.sizeBytes,
      labels: record.labels,
      createdAt: record.createdAt,
      epoch: replica.epoch,
      attachedNode: record.attached ? this.identity.nodeId : null,
      nbdUri: record.attached ? this.attachment(record.name).nbdUri : null,
      allocatedBytes: replica.allocatedBytes,
      snapshotCount: replica.snapshots().length,
      replicas: [
        {
          replicaId: replica.replicaId,
          node: this.identity.nodeId,
          zone: this.identity.zone,
          state: "in-sync",
        },
      ],
    };
  }

  private attachment(name: string): Attachment {
    return describeAttachment(this.identity, this.endpoints, name);
  }

  private async saveRecord(entry: VolumeEntry, record: VolumeRecord): Promise<void> {
    await writeJsonAtomic(join(entry.dir, VOLUME_RECORD), record);
    entry.record = record;
  }

  async nodeStatus(): Promise<NodeStatus> {
    return describeNode(
      this.identity,
      this.endpoints,
      this.pool.usage(this.provisionedBytes()),
      this.byName.size,
    );
  }

  async listVolumes(): Promise<Volume[]> {
    return [...this.byName.values()]
      .map((entry) => this.toVolume(entry))
      .sort((a, b) => a.name.localeCompare(b.name));
  }

  async getVolume(name: string): Promise<Volume> {
    return this.toVolume(this.entry(name));
  }

  /**
   * Creates a volume's replica and its record as one ReplicaHost create: the record is written
   * before the create commits, so a crash leaves either both or a half-made directory the next
   * start removes. Nothing half-made is ever listed.
   */
  private async createOnPool(
    name: string,
    labels: Labels,
    makeReplica: (
      dir: string,
      identity: { volumeId: string; replicaId: string },
      drive: Drive,
    ) => Promise<Replica>,
  ): Promise<Volume> {
    if (this.byName.has(name)) throw new StrataError("ALREADY_EXISTS", `volume "${name}" already exists`);
    const volumeId = randomUUID();
    const record: VolumeRecord = {
      formatVersion: 1,
      id: volumeId,
      name,
      labels,
      createdAt: new Date().toISOString(),
      attached: false,
    };
    const replica = await this.host.build(
      volumeId,
      (dir, drive) => makeReplica(dir, { volumeId, replicaId: randomUUID() }, drive),
      { beforeCommit: (dir) => writeJsonAtomic(join(dir, VOLUME_RECORD), record) },
    );
    const entry = this.addEntry(record, replica, this.host.dirOf(volumeId)!);
    this.log.info({ volume: name, volumeId, sizeBytes: replica.sizeBytes }, "volume created");
    return this.toVolume(entry);
  }

  async createVolume(request: CreateVolume): Promise<Volume> {
    if (request.replicationFactor > 1) throw standaloneOnly("replicated volumes");
    return this.namespaceLock.run(() =>
      this.createOnPool(request.name, request.labels, (dir, identity, drive) =>
        Replica.create(dir, {
          ...identity,
          sizeBytes: request.sizeBytes,
          epoch: LOCAL_REPLICA_EPOCH,
          allocator: drive,
          log: this.log,
        }),
      ),
    );
  }

  async resizeVolume(name: string, sizeBytes: number): Promise<Volume> {
    const entry = this.entry(name);
    return entry.lock.run(async () => {
      const current = entry.replica.sizeBytes;
      if (sizeBytes < current) {
        throw invalid(
          `cannot shrink volume "${name}" from ${formatSize(current)} to ${formatSize(sizeBytes)}: volumes only grow`,
        );
      }
      if (sizeBytes > current) {
        await entry.replica.resize(sizeBytes);
        this.log.info({ volume: name, from: current, to: sizeBytes }, "volume resized");
      }
      return this.toVolume(entry);
    });
  }

  async deleteVolume(name: string): Promise<void> {
    const entry = this.entry(name);
    await entry.lock.run(async () => {
      this.requireDetached(entry, "delete");
      if (this.byName.get(name) !== entry) throw notFound(`volume "${name}"`);
      // The host's rename to .deleting is the commit point: once durable, the volume is gone.
      await this.host.destroy(entry.record.id);
      this.byName.delete(name);
      this.log.info({ volume: name }, "volume deleted");
    });
  }

  async updateReplication(name: string): Promise<Volume> {
    this.entry(name);
    throw standaloneOnly("replicated volumes");
  }

  async attachVolume(name: string): Promise<Attachment> {
    const entry = this.entry(name);
    return entry.lock.run(async () => {
      if (!entry.record.attached) {
        await this.saveRecord(entry, { ...entry.record, attached: true });
        this.log.info({ volume: name }, "volume attached");
      }
      return this.attachment(name);
    });
  }

  async detachVolume(name: string): Promise<void> {
    const entry = this.entry(name);
    await entry.lock.run(async () => {
      if (entry.leases > 0) {
        throw conflict(
          `cannot detach volume "${name}": ${entry.leases} NBD client connection(s) are still open; disconnect them first`,
        );
      }
      if (entry.record.attached) {
        await entry.replica.flush();
        await this.saveRecord(entry, { ...entry.record, attached: false });
        this.log.info({ volume: name }, "volume detached");
      }
    });
  }

  private snapshotOf(entry: VolumeEntry, snapshot: string) {
    const found = entry.replica.snapshots().find((s) => s.name === snapshot);
    if (!found) throw notFound(`snapshot "${entry.record.name}@${snapshot}"`);
    return found;
  }

  private toSnapshot(
    entry: VolumeEntry,
    snapshot: { id: string; name: string; createdAt: string },
  ): Snapshot {
    return {
      id: snapshot.id,
      name: snapshot.name,
      volume: entry.record.name,
      createdAt: snapshot.createdAt,
      exclusiveBytes: entry.replica.exclusiveBytes(snapshot.id),
    };
  }

  async listSnapshots(volume: string): Promise<Snapshot[]> {
    const entry = this.entry(volume);
    return entry.replica.snapshots().map((s) => this.toSnapshot(entry, s));
  }

  async createSnapshot(volume: string, name?: string): Promise<Snapshot> {
    const entry = this.entry(volume);
    return entry.lock.run(async () => {
      const taken = new Set(entry.replica.snapshots().map((s) => s.name));
      if (name !== undefined && taken.has(name)) {
        throw new StrataError("ALREADY_EXISTS", `snapshot "${volume}@${name}" already exists`);
      }
      const snapshotName = name ?? defaultSnapshotName(taken);
      const snapshot = await entry.replica.snapshot(snapshotName);
      this.log.info({ volume, snapshot: snapshotName }, "snapshot created");
      return this.toSnapshot(entry, snapshot);
    });
  }

  async deleteSnapshot(volume: string, snapshot: string): Promise<void> {
    const entry = this.entry(volume);
    await entry.lock.run(async () => {
      const found = this.snapshotOf(entry, snapshot);
      await entry.replica.deleteSnapshot(found.id);
      this.log.info({ volume, snapshot }, "snapshot deleted");
    });
  }

  async cloneSnapshot(volume: string, snapshot: string, target: string, labels: Labels): Promise<Volume> {
    const entry = this.entry(volume);
    return this.namespaceLock.run(() =>
      entry.lock.run(() => {
        const found = this.snapshotOf(entry, snapshot);
        return this.createOnPool(target, labels, (dir, identity, drive) =>
          entry.replica.cloneSnapshot(found.id, dir, {
            ...identity,
            epoch: LOCAL_REPLICA_EPOCH,
            allocator: drive,
            log: this.log,
          }),
        );
      }),
    );
  }

  async revertVolume(volume: string, snapshot: string): Promise<Volume> {
    const entry = this.entry(volume);
    return entry.lock.run(async () => {
      this.requireDetached(entry, "revert");
      const found = this.snapshotOf(entry, snapshot);
      await entry.replica.revert(found.id);
      this.log.info({ volume, snapshot }, "volume reverted to snapshot");
      return this.toVolume(entry);
    });
  }

  names(): string[] {
    return [...this.byName.values()].filter((e) => e.record.attached).map((e) => e.record.name);
  }

  open(name: string): ExportLease | undefined {
    const entry = this.byName.get(name);
    if (!entry?.record.attached) return undefined;
    return countedLease(
      name,
      `Strata volume ${name} (${formatSize(entry.replica.sizeBytes)})`,
      entry.replica,
      entry,
    );
  }

  /** Flushes and closes every replica; the agent calls this on shutdown. */
  async close(): Promise<void> {
    for (const entry of this.byName.values()) {
      await entry.lock.run(() => entry.replica.close());
    }
    this.byName.clear();
    if (this.ownsHost) await this.host.close();
  }
}

/** How to reach a volume attached to this node over NBD, by TCP and by Unix socket. */
export function describeAttachment(identity: NodeIdentity, endpoints: Endpoints, volume: string): Attachment {
  const { nbdAddress, nbdSocket } = endpoints;
  return {
    volume,
    node: identity.nodeId,
    nbdUri: `nbd://${nbdAddress}/${volume}`,
    nbdUnixUri: nbdSocket ? `nbd+unix:///${volume}?socket=${nbdSocket}` : null,
  };
}

/** This node as the control API shows it. */
export function describeNode(
  identity: NodeIdentity,
  endpoints: Endpoints,
  pool: PoolUsage,
  volumeCount: number,
): NodeStatus {
  return {
    id: identity.nodeId,
    zone: identity.zone,
    state: "up",
    version: identity.version,
    ...endpoints,
    pool,
    volumeCount,
    startedAt: identity.startedAt,
  };
}

/** What a standalone agent (no cluster state store) cannot do, and how to get it. */
function standaloneOnly(what: string): StrataError {
  return invalid(
    `${what} need a cluster: this agent runs standalone (start it with --state-table, as \`strata cluster up\` does)`,
  );
}

/** "snap-20261121-193012", with a suffix when two snapshots are taken within one second. */
export function defaultSnapshotName(taken: ReadonlySet<string>): string {
  const stamp = new Date().toISOString().replace(/[-:]/g, "").replace("T", "-").slice(0, 15);
  let name = `snap-${stamp}`;
  for (let n = 2; taken.has(name); n++) name = `snap-${stamp}-${n}`;
  return name;
}
