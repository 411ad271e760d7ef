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
import type { ClusterVolumes } from "./service.js";

/**
 * How long a volume's cloudsnap lease lasts without renewal: the wait before another node may
 * upload or delete cloudsnaps of a volume whose uploader died. Renewed every third of it.
 */
export const CLOUDSNAP_LEASE_MS = 60_000;

const leaseName = (volumeId: string) => `cloudsnaps/${volumeId}`;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

export interface TakeOptions {
  /** Who holds the lease meanwhile, e.g. `<node>/<operation id>`. */
  holder: string;
  group?: string;
  schedule?: ScheduleKind;
  onProgress?: (progress: UploadProgress) => void;
}

export interface RestoreTarget {
  name: string;
  /** The new volume's id, chosen before (the restore operation's). */
  volumeId: string;
  /** The cloudsnap's volume's, unless given. */
  replicationFactor?: number;
  labels: Record<string, string>;
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

  async take(volumeName: string, options: TakeOptions): Promise<CatalogEntry> {
    const repository = this.repository();
    const volume = await this.store.volumes.getByName(volumeName);
    const lease = { name: leaseName(volume.id), holder: options.holder, ttlMs: CLOUDSNAP_LEASE_MS };
    return underLease(this.store.leases, lease, async (held) => {
      const latest = await repository.latest(volume.id);
      const at = new Date();
      const snapshot = await this.volumes.createSnapshot(volumeName, `cloudsnap-${cloudsnapStamp(at)}`);
      let entry: CatalogEntry;
      try {
        entry = await this.upload(
          repository,
          { id: volume.id, name: volumeName, replicationFactor: volume.replicationFactor },
          snapshot,
          latest,
          at,
          options,
          held,
        );
      } catch (error) {
        await this.dropSnapshot(volumeName, volume.id, snapshot.id);
        throw error;
      }
      // Its data is in the bucket, and the new cloudsnap's snapshot is the next one's base.
      if (latest !== undefined) await this.dropSnapshot(volumeName, volume.id, latest.snapshotId);
      this.log.info(
        { volume: volumeName, cloudsnap: entry.id, uploadedBytes: entry.uploadedBytes },
        "cloudsnap taken",
      );
      return entry;
    });
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
    options: TakeOptions,
    held: HeldLease,
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
            ...(options.onProgress === undefined ? {} : { onProgress: options.onProgress }),
          },
          held,
        ),
      );
    const since = latest?.snapshotId;
    if (since === undefined || !(await this.hasSnapshot(volume.id, since))) return read(undefined);
    try {
      return await read(since);
    } catch (error) {
      // No in-sync replica has the base any more (each was rebuilt since): read everything.
      if (!(error instanceof UnknownSnapshotError)) throw error;
      this.log.warn(
        { volume: volume.name, since },
        "the previous cloudsnap's snapshot is gone: reading all data",
      );
      return read(undefined);
    }
  }

  private async hasSnapshot(volumeId: string, snapshotId: string): Promise<boolean> {
    return (await this.store.snapshots.list(volumeId)).some((snapshot) => snapshot.id === snapshotId);
  }

  /** Deletes a cloudsnap's snapshot if it is still there; a failure is logged, not thrown (it is only space). */
  private async dropSnapshot(volumeName: string, volumeId: string, snapshotId: string): Promise<void> {
    const found = (await this.store.snapshots.list(volumeId)).find((snapshot) => snapshot.id === snapshotId);
    if (found === undefined) return;
    await this.volumes.deleteSnapshot(volumeName, found.name).catch((error: unknown) => {
      this.log.warn(
        { err: error, volume: volumeName, snapshot: found.name },
        "a cloudsnap's snapshot was left",
      );
    });
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
      nodeSelector: {},
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
    const [deleted] = await this.deleteOfVolume(volumeOfCloudsnap(cloudsnapId), [cloudsnapId], {
      holder: `${this.nodeId}/delete-${randomUUID()}`,
      skipMissing: false,
    });
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
    return this.deleteOfVolume(volumeId, cloudsnapIds, { holder, skipMissing: true });
  }

  private async deleteOfVolume(
    volumeId: string,
    cloudsnapIds: readonly string[],
    options: { holder: string; skipMissing: boolean },
  ): Promise<CatalogEntry[]> {
    const repository = this.repository();
    const lease = { name: leaseName(volumeId), holder: options.holder, ttlMs: CLOUDSNAP_LEASE_MS };
    return underLease(this.store.leases, lease, async (held) => {
      const listed = new Set((await repository.list(volumeId)).map((entry) => entry.id));
      const deleted: CatalogEntry[] = [];
      for (const id of cloudsnapIds) {
        if (options.skipMissing && !listed.has(id)) continue;
        deleted.push(await repository.delete(id, held));
      }
      await repository.collectGarbage(volumeId, held);
      const volume = await this.store.volumes.get(volumeId).catch((error: unknown) => {
        if (error instanceof RecordNotFoundError) return undefined;
        throw error;
      });
      for (const entry of deleted) {
        if (volume !== undefined) await this.dropSnapshot(volume.name, volumeId, entry.snapshotId);
        this.log.info({ cloudsnap: entry.id }, "cloudsnap deleted");
      }
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
