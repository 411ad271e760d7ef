import { type CloudsnapBucket, MissingObjectError } from "../../core/cloud/cloudsnap-bucket.js";
import { type CatalogEntry, readCatalog, writeCatalog } from "../../core/cloud/cloudsnap-catalog.js";
import { manifestObject, newCloudsnapId, volumeOfCloudsnap } from "../../core/cloud/cloudsnap-layout.js";
import { notFound } from "../../core/errors.js";
import type { ScheduleKind } from "../../core/schedule-policies.js";
import type { HeldLease } from "../../core/state/leases.js";
import { collectGarbage, type GarbageCollected } from "./garbage.js";
import type { VolumeKeys } from "./keys.js";
import { type Manifest, openManifest } from "./manifest.js";
import type { PackWriterOptions } from "./pack-writer.js";
import { type RestoreProgress, restoreCloudsnap } from "./restore.js";
import { type UploadProgress, type UploadSource, uploadCloudsnap } from "./upload.js";
import { ensureVolumeKeys, loadVolumeKeys, type VolumeKeyProtection } from "./volume-key.js";

export interface TakeCloudsnap {
  volumeId: string;
  volumeName: string;
  replicationFactor: number;
  /** The snapshot being uploaded. */
  snapshotId: string;
  /** What to read of it: every block holding data, or with `since` the blocks changed since then. */
  source: UploadSource;
  /**
   * The snapshot the source's runs are relative to, which must be the one the volume's latest
   * cloudsnap was read from (latest() says which); undefined when the source covers all the data.
   */
  since?: string;
  group?: string;
  /** The policy schedule that asked for it; absent for one taken by hand. */
  schedule?: ScheduleKind;
  at?: Date;
  onProgress?: (progress: UploadProgress) => void;
}

/**
 * A bucket of cloudsnaps, as one cluster reads and writes it. Mutations of a volume's cloudsnaps
 * (take, delete, collect garbage) must run one at a time per volume: callers hold the volume's
 * cloudsnap lease (core/state), which each confirms before it rewrites the catalog or deletes.
 * Reads (list, show, restore) need nothing and work from any cluster that has the bucket and the key.
 */
export class CloudsnapRepository {
  constructor(
    readonly bucket: CloudsnapBucket,
    private readonly keyProtection: VolumeKeyProtection,
    private readonly packs?: PackWriterOptions,
  ) {}

  /** A volume's cloudsnaps, oldest first (one GET, no LIST). */
  async list(volumeId: string): Promise<CatalogEntry[]> {
    return (await readCatalog(this.bucket, volumeId)).cloudsnaps;
  }

  /** The volume's latest cloudsnap, whose snapshot an incremental is read against. */
  async latest(volumeId: string): Promise<CatalogEntry | undefined> {
    return (await this.list(volumeId)).at(-1);
  }

  async get(cloudsnapId: string): Promise<CatalogEntry> {
    return this.find(cloudsnapId);
  }

  /**
   * Uploads a snapshot as a new cloudsnap: packs, then its manifest, then the catalog naming it.
   * A failure before the catalog is written leaves objects no catalog names (garbage collection
   * removes them) and the catalog as it was.
   */
  async take(request: TakeCloudsnap, lease: HeldLease): Promise<CatalogEntry> {
    const { volumeId } = request;
    const keys = await ensureVolumeKeys(this.bucket, volumeId, this.keyProtection);
    const catalog = await readCatalog(this.bucket, volumeId);
    const latest = catalog.cloudsnaps.at(-1);
    const { source, since } = request;
    if (since !== undefined && since !== latest?.snapshotId) {
      throw new Error(
        `an incremental cloudsnap of volume ${volumeId} must be read since snapshot ${latest?.snapshotId ?? "(none: it has no cloudsnap)"}, not ${since}`,
      );
    }
    const incremental = since !== undefined;
    const baseManifest = latest === undefined ? undefined : await this.manifest(volumeId, latest.id, keys);
    const at = request.at ?? new Date();
    const cloudsnapId = newCloudsnapId(volumeId, at);
    const uploaded = await uploadCloudsnap({
      bucket: this.bucket,
      keys,
      volumeId,
      cloudsnapId,
      createdAt: at,
      source,
      ...(baseManifest === undefined ? {} : { base: { manifest: baseManifest, incremental } }),
      ...(this.packs === undefined ? {} : { packs: this.packs }),
      ...(request.onProgress === undefined ? {} : { onProgress: request.onProgress }),
    });
    const entry: CatalogEntry = {
      id: cloudsnapId,
      createdAt: at.toISOString(),
      volumeName: request.volumeName,
      sizeBytes: source.sizeBytes,
      replicationFactor: request.replicationFactor,
      snapshotId: request.snapshotId,
      dataBytes: uploaded.dataBytes,
      scannedBytes: uploaded.progress.scannedBytes,
      uploadedBytes: uploaded.progress.uploadedBytes,
      chunks: uploaded.progress.chunks,
      newChunks: uploaded.progress.newChunks,
      incremental,
      ...(request.group === undefined ? {} : { group: request.group }),
      ...(request.schedule === undefined ? {} : { schedule: request.schedule }),
    };
    await lease.confirm();
    await writeCatalog(this.bucket, { ...catalog, cloudsnaps: [...catalog.cloudsnaps, entry] });
    return entry;
  }

  /**
   * Writes a cloudsnap's data through `write` (every replica of a new volume). Everything is read
   * from the bucket and checked: a wrong key, an altered or missing object fails naming it.
   */
  async restore(
    cloudsnapId: string,
    write: (offset: number, data: Buffer) => Promise<void>,
    onProgress?: (progress: RestoreProgress) => void,
  ): Promise<RestoreProgress> {
    const entry = await this.find(cloudsnapId);
    const volumeId = volumeOfCloudsnap(cloudsnapId);
    const keys = await loadVolumeKeys(this.bucket, volumeId, this.keyProtection);
    const attempt = async () =>
      restoreCloudsnap({
        bucket: this.bucket,
        keys,
        manifest: await this.manifest(volumeId, entry.id, keys),
        write,
        ...(onProgress === undefined ? {} : { onProgress }),
      });
    try {
      return await attempt();
    } catch (error) {
      // Garbage collection may have repacked a chunk and deleted its old pack after this restore
      // read the manifest: the manifest as it is now names where the chunk went. Writing the
      // chunks again is harmless (same bytes, same places); a pack still missing is a real loss.
      if (!(error instanceof MissingObjectError) || !error.location.includes("/packs/")) throw error;
      return attempt();
    }
  }

  /** Unlists a cloudsnap, then deletes its manifest; its chunks go with the next garbage collection. */
  async delete(cloudsnapId: string, lease: HeldLease): Promise<CatalogEntry> {
    const [deleted] = await this.deleteListed(volumeOfCloudsnap(cloudsnapId), [cloudsnapId], lease);
    if (deleted === undefined) throw this.notListed(cloudsnapId);
    return deleted;
  }

  /**
   * Unlists those of `cloudsnapIds` (all of the volume's) its catalog still lists, in one catalog
   * write, then deletes their manifests in one request; ones already gone are skipped, so a retried
   * retention deletes nothing more.
   */
  async deleteListed(
    volumeId: string,
    cloudsnapIds: readonly string[],
    lease: HeldLease,
  ): Promise<CatalogEntry[]> {
    const catalog = await readCatalog(this.bucket, volumeId);
    const doomed = new Set(cloudsnapIds);
    const deleted = catalog.cloudsnaps.filter((cloudsnap) => doomed.has(cloudsnap.id));
    if (deleted.length === 0) return [];
    await lease.confirm();
    await writeCatalog(this.bucket, {
      ...catalog,
      cloudsnaps: catalog.cloudsnaps.filter((cloudsnap) => !doomed.has(cloudsnap.id)),
    });
    await this.bucket.delete(deleted.map((cloudsnap) => manifestObject(volumeId, cloudsnap.id)));
    return deleted;
  }

  /** Frees what no listed cloudsnap of the volume needs any more (garbage.ts). */
  async collectGarbage(
    volumeId: string,
    lease: HeldLease,
    options: { repackBelow?: number } = {},
  ): Promise<GarbageCollected> {
    const catalog = await readCatalog(this.bucket, volumeId);
    return collectGarbage({
      bucket: this.bucket,
      volumeId,
      cloudsnapIds: catalog.cloudsnaps.map((cloudsnap) => cloudsnap.id),
      keys:
        catalog.cloudsnaps.length === 0
          ? undefined
          : await loadVolumeKeys(this.bucket, volumeId, this.keyProtection),
      lease,
      ...options,
    });
  }

  async manifest(volumeId: string, cloudsnapId: string, keys: VolumeKeys): Promise<Manifest> {
    const key = manifestObject(volumeId, cloudsnapId);
    return openManifest(await this.bucket.get(key), { volumeId, cloudsnapId }, keys, this.bucket.where(key));
  }

  private async find(cloudsnapId: string): Promise<CatalogEntry> {
    const volumeId = volumeOfCloudsnap(cloudsnapId);
    const catalog = await readCatalog(this.bucket, volumeId);
    const entry = catalog.cloudsnaps.find((cloudsnap) => cloudsnap.id === cloudsnapId);
    if (entry === undefined) throw this.notListed(cloudsnapId);
    return entry;
  }

  private notListed(cloudsnapId: string) {
    return notFound(`cloudsnap ${cloudsnapId} (in s3://${this.bucket.name})`);
  }
}
