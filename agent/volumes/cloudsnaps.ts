import { randomUUID } from "node:crypto";
import type { CatalogEntry } from "../../core/cloud/cloudsnap-catalog.js";
import { cloudsnapStamp, volumeOfCloudsnap } from "../../core/cloud/cloudsnap-layout.js";
import type { CloudsnapService } from "../../core/cloudsnaps.js";
import { invalid, notFound } from "../../core/errors.js";
import type { Volume } from "../../core/model.js";
import type { ScheduleKind } from "../../core/schedule-policies.js";
import { RecordNotFoundError } from "../../core/state/errors.js";
import { type HeldLease, underLease } from "../../core/state/leases.js";
import type { StateStore } from "../../core/state/store.js";
import { FIRST_EPOCH } from "../../core/state/volumes.js";
import type { CloudsnapRepository } from "../cloudsnap/repository.js";
import type { RestoreProgress } from "../cloudsnap/restore.js";
import type { UploadProgress } from "../cloudsnap/upload.js";
import type { Logger } from "../log.js";
import { UnknownSnapshotError } from "../replication/errors.js";
import { betweenHooks, type SnapshotHooks } from "./hooks.js";
import type { ClusterVolumes } from "./service.js";

/**
 * How long a volume's cloudsnap lease lasts without renewal: the wait before another node may
 * upload or delete cloudsnaps of a volume whose uploader died. Renewed every third of it.
 */
export const CLOUDSNAP_LEASE_MS = 60_000;

const leaseName = (volumeId: string) => `cloudsnaps/${volumeId}`;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

export interface TakeOptions {
  /** Who holds the leases meanwhile, e.g. `<node>/<operation id>`. */
  holder: string;
  /** Recorded with each cloudsnap as `<group>@<time>`: the cloudsnaps taken together. */
  group?: string;
  /** The policy schedule that made it (retention keeps the last N of each). */
  schedule?: ScheduleKind;
  hooks?: SnapshotHooks;
  /** Bytes read of the bytes to read, over every volume of the group (the total grows as each starts). */
  onProgress?: (doneBytes: number, totalBytes: number) => void;
}

/** Sums the progress of a group's uploads, one after another. */
class ProgressSum {
  private readonly done: number[];
  private readonly total: number[];
  constructor(
    volumes: number,
    private readonly listener?: (doneBytes: number, totalBytes: number) => void,
  ) {
    this.done = new Array(volumes).fill(0);
    this.total = new Array(volumes).fill(0);
  }

  report(volume: number, progress: UploadProgress): void {
    this.done[volume] = progress.scannedBytes;
    this.total[volume] = progress.totalBytes;
    const sum = (values: number[]) => values.reduce((a, b) => a + b, 0);
    this.listener?.(sum(this.done), sum(this.total));
  }
}

export interface RestoreTarget {
  name: string;
  /** The new volume's id, chosen before (the restore operation's). */
  volumeId: string;
  /** The cloudsnap's volume's, unless given. */
  replicationFactor?: number;
  labels: Record<string, string>;
  nodeSelector: Record<string, string>;
}

/**
 * Cloudsnaps of this cluster's volumes, as the agents take and restore them. A cloudsnap is of a
 * snapshot taken for it (`cloudsnap-<time>`), which stays until the next cloudsnap of the volume
 * is up, so that one reads only the blocks changed since. Every change of a volume's cloudsnaps
 * holds its lease in the state table: one writer of its catalog at a time, cluster-wide.
 */
export class VolumeCloudsnaps implements CloudsnapService {
  constructor(
    private readonly volumes: ClusterVolumes,
    private readonly store: StateStore,
    private readonly repository: () => CloudsnapRepository,
    private readonly nodeId: string,
    private readonly log: Logger,
  ) {}

  /**
   * Cloudsnaps of one volume or of a group at one point of their write streams: snapshots taken
   * together (between the hooks, if any), then each uploaded. Each volume's lease is held
   * throughout (taken in name order). A volume whose upload fails fails the whole, but the
   * cloudsnaps of the others stay (each is complete and restores on its own; the group's tag says
   * they belong together).
   */
  async take(volumeNames: readonly string[], options: TakeOptions): Promise<CatalogEntry[]> {
    const repository = this.repository();
    const names = [...new Set(volumeNames)].sort();
    const volumes = await Promise.all(names.map((name) => this.store.volumes.getByName(name)));
    return this.underLeases(volumes, options.holder, async (leases) => {
      const latest = await Promise.all(volumes.map((volume) => repository.latest(volume.id)));
      const at = new Date();
      const snapshotName = `cloudsnap-${cloudsnapStamp(at)}`;
      const snapshots = await betweenHooks(options.hooks ?? {}, () =>
        this.volumes.createGroupSnapshot(names, snapshotName),
      );
      const group = options.group === undefined ? undefined : `${options.group}@${cloudsnapStamp(at)}`;
      const progress = new ProgressSum(names.length, options.onProgress);
      const entries: CatalogEntry[] = [];
      for (const [i, volume] of volumes.entries()) {
        const snapshot = snapshots[i]!;
        try {
          entries.push(
            await this.upload(repository, volume, snapshot, latest[i], at, leases[i]!, {
              ...(group === undefined ? {} : { group }),
              ...(options.schedule === undefined ? {} : { schedule: options.schedule }),
              onProgress: (uploading) => progress.report(i, uploading),
            }),
          );
        } catch (error) {
          // Neither this volume nor those not uploaded yet keep their new snapshot: the next
          // cloudsnap of each reads from its previous base.
          for (let left = i; left < volumes.length; left++)
            await this.dropSnapshots(volumes[left]!, [snapshots[left]!.id]);
          throw error;
        }
        // Its data is in the bucket, and the new cloudsnap's snapshot is the next one's base.
        const base = latest[i];
        if (base !== undefined) await this.dropSnapshots(volume, [base.snapshotId]);
        this.log.info(
          { volume: volume.name, cloudsnap: entries[i]!.id, uploadedBytes: entries[i]!.uploadedBytes },
          "cloudsnap taken",
        );
      }
      return entries;
    });
  }

  /** Runs `work` holding the cloudsnap lease of every volume, taken in the order given. */
  private underLeases<T>(
    volumes: readonly { id: string }[],
    holder: string,
    work: (leases: HeldLease[]) => Promise<T>,
  ): Promise<T> {
    const from = (index: number, held: HeldLease[]): Promise<T> =>
      index === volumes.length
        ? work(held)
        : underLease(
            this.store.leases,
            { name: leaseName(volumes[index]!.id), holder, ttlMs: CLOUDSNAP_LEASE_MS },
            (lease) => from(index + 1, [...held, lease]),
          );
    return from(0, []);
  }

  /**
   * Reads the changed blocks when the previous cloudsnap's snapshot is still on the volume, else
   * all of its data (dedupe then uploads only the chunks the bucket lacks).
   */
  private async upload(
    repository: CloudsnapRepository,
    volume: { id: string; name: string; replicationFactor: number },
    snapshot: { id: string; name: string },
    latest: CatalogEntry | undefined,
    at: Date,
    held: HeldLease,
    options: { group?: string; schedule?: ScheduleKind; onProgress: (progress: UploadProgress) => void },
  ): Promise<CatalogEntry> {
    const { sizeBytes } = await this.store.snapshots.get(volume.id, snapshot.name);
    const read = (since: string | undefined) =>
      this.volumes.withSnapshotReader(volume.name, snapshot.id, since, (reader) =>
        repository.take(
          {
            volumeId: volume.id,
            volumeName: volume.name,
            replicationFactor: volume.replicationFactor,
            snapshotId: snapshot.id,
            source: { sizeBytes, runs: reader.runs, read: reader.read },
            at,
            ...(since === undefined ? {} : { since }),
            ...(options.group === undefined ? {} : { group: options.group }),
            ...(options.schedule === undefined ? {} : { schedule: options.schedule }),
            onProgress: options.onProgress,
          },
          held,
        ),
      );
    const since = latest?.snapshotId;
    if (since === undefined) return read(undefined);
    try {
      return await read(since);
    } catch (error) {
      // No in-sync replica has the base any more (deleted by hand, or each replica rebuilt since):
      // read everything.
      if (!(error instanceof UnknownSnapshotError)) throw error;
      this.log.warn(
        { volume: volume.name, since },
        "the previous cloudsnap's snapshot is gone: reading all data",
      );
      return read(undefined);
    }
  }

  /**
   * Deletes those of a volume's cloudsnap snapshots still there (one listing for all); a failure
   * is logged, not thrown (it is only space).
   */
  private async dropSnapshots(
    volume: { id: string; name: string },
    snapshotIds: readonly string[],
  ): Promise<void> {
    if (snapshotIds.length === 0) return;
    const wanted = new Set(snapshotIds);
    for (const found of await this.store.snapshots.list(volume.id)) {
      if (!wanted.has(found.id)) continue;
      await this.volumes.deleteSnapshot(volume.name, found.name).catch((error: unknown) => {
        this.log.warn(
          { err: error, volume: volume.name, snapshot: found.name },
          "a cloudsnap's snapshot was left",
        );
      });
    }
  }

  /**
   * A new volume holding the cloudsnap's data, with its replicas placed like any new volume's. The
   * volume is recorded only once every replica holds every chunk: a failure (a wrong key, a
   * missing or altered object) leaves no volume and no replica.
   */
  async restore(
    cloudsnapId: string,
    target: RestoreTarget,
    onProgress?: (progress: RestoreProgress) => void,
  ): Promise<Volume> {
    const repository = this.repository();
    const cloudsnap = await repository.get(cloudsnapId);
    const request = {
      name: target.name,
      sizeBytes: cloudsnap.sizeBytes,
      labels: target.labels,
      replicationFactor: target.replicationFactor ?? cloudsnap.replicationFactor,
      nodeSelector: target.nodeSelector,
    };
    const volume = await this.volumes.createVolume(request, {
      volumeId: target.volumeId,
      fill: async (replicas) => {
        await repository.restore(
          cloudsnapId,
          (offset, data) =>
            Promise.all(
              replicas.map((replica) => replica.write(FIRST_EPOCH, offset, data, { fua: false })),
            ).then(() => undefined),
          onProgress,
        );
      },
    });
    this.log.info({ cloudsnap: cloudsnapId, volume: target.name }, "cloudsnap restored");
    return volume;
  }

  /** A volume's cloudsnaps, oldest first: a volume of this cluster by name, or any volume by id. */
  async listCloudsnaps(volume: string): Promise<CatalogEntry[]> {
    const repository = this.repository();
    return repository.list(await this.volumeIdOf(volume));
  }

  async getCloudsnap(cloudsnapId: string): Promise<CatalogEntry> {
    return this.repository().get(cloudsnapId);
  }

  /**
   * Unlists and deletes a cloudsnap, then frees the packs no other cloudsnap of the volume needs.
   * The snapshot it was read from goes too, when its volume is this cluster's: a later cloudsnap
   * then reads the volume in full (dedupe keeps the upload to what the bucket lacks).
   */
  async deleteCloudsnap(cloudsnapId: string): Promise<CatalogEntry> {
    const holder = `${this.nodeId}/delete-${randomUUID()}`;
    const [deleted] = await this.deleteOfVolume(volumeOfCloudsnap(cloudsnapId), holder, async (held) => [
      await this.repository().delete(cloudsnapId, held),
    ]);
    return deleted!;
  }

  /**
   * Retention: deletes those of `cloudsnapIds` (all of one volume) still listed, under one hold of
   * the volume's lease, and collects garbage once for all of them. Ones already gone (a retried
   * operation, an operator's delete) are skipped, so running it twice deletes nothing more.
   */
  async deleteCloudsnaps(
    volumeId: string,
    cloudsnapIds: readonly string[],
    holder: string,
  ): Promise<CatalogEntry[]> {
    const foreign = cloudsnapIds.find((id) => volumeOfCloudsnap(id) !== volumeId);
    if (foreign !== undefined) throw invalid(`cloudsnap ${foreign} is not one of volume ${volumeId}'s`);
    return this.deleteOfVolume(volumeId, holder, (held) =>
      this.repository().deleteListed(volumeId, cloudsnapIds, held),
    );
  }

  /** Under the volume's lease: `unlist` cloudsnaps, collect garbage, drop their snapshots. */
  private async deleteOfVolume(
    volumeId: string,
    holder: string,
    unlist: (held: HeldLease) => Promise<CatalogEntry[]>,
  ): Promise<CatalogEntry[]> {
    const repository = this.repository();
    const lease = { name: leaseName(volumeId), holder, ttlMs: CLOUDSNAP_LEASE_MS };
    return underLease(this.store.leases, lease, async (held) => {
      const deleted = await unlist(held);
      await repository.collectGarbage(volumeId, held);
      const volume = await this.store.volumes.get(volumeId).catch((error: unknown) => {
        if (error instanceof RecordNotFoundError) return undefined;
        throw error;
      });
      if (volume !== undefined) {
        await this.dropSnapshots(
          volume,
          deleted.map((entry) => entry.snapshotId),
        );
      }
      for (const entry of deleted) this.log.info({ cloudsnap: entry.id }, "cloudsnap deleted");
      return deleted;
    });
  }

  private async volumeIdOf(volume: string): Promise<string> {
    try {
      return (await this.store.volumes.getByName(volume)).id;
    } catch (error) {
      if (!(error instanceof RecordNotFoundError)) throw error;
      if (UUID.test(volume)) return volume;
      throw notFound(`volume "${volume}" (give another cluster's volume by its id)`);
    }
  }
}
