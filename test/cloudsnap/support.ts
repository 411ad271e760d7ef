import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { deflateRawSync } from "node:zlib";
import { S3Client } from "@aws-sdk/client-s3";
import { afterAll, beforeAll } from "vitest";
import type { ByteRange } from "../../agent/block-device.js";
import type { VolumeKeys } from "../../agent/cloudsnap/keys.js";
import { type Manifest, openManifest } from "../../agent/cloudsnap/manifest.js";
import { CloudsnapRepository } from "../../agent/cloudsnap/repository.js";
import { seal } from "../../agent/cloudsnap/sealing.js";
import type { UploadSource } from "../../agent/cloudsnap/upload.js";
import { loadVolumeKeys, VolumeKeyProtection } from "../../agent/cloudsnap/volume-key.js";
import { CloudsnapBucket } from "../../core/cloud/cloudsnap-bucket.js";
import { manifestObject, volumeOfCloudsnap } from "../../core/cloud/cloudsnap-layout.js";
import { cloudsnapS3Config } from "../../core/cloud/s3-client.js";
import type { HeldLease } from "../../core/state/leases.js";
import { type LocalS3, startLocalS3 } from "../../infra/local/s3/local-s3.js";

export const MiB = 1024 * 1024;
const DEFAULT_PASSPHRASE = "correct horse battery staple";

/** The suite's S3-compatible server (s3rver in its own process) and a bucket on it. */
export interface TestBucket {
  s3: LocalS3;
  client: S3Client;
  bucket: CloudsnapBucket;
  /** Stops the server and starts it again on the same objects (a new port, so a new client). */
  restart(): Promise<void>;
}

/** Starts s3rver for the suite, in a scratch directory, and stops it after. */
export function bucketPerSuite(): TestBucket {
  let dir: string;
  const state = {} as TestBucket;
  const start = async () => {
    state.s3 = await startLocalS3({ dir, bucket: "cloudsnaps" });
    state.client = s3Client(state.s3.endpoint);
    state.bucket = new CloudsnapBucket(state.client, state.s3.bucket);
  };
  state.restart = async () => {
    await state.s3.close();
    state.client.destroy();
    await start();
  };
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "strata-cloudsnap-"));
    await start();
  });
  afterAll(async () => {
    state.client?.destroy();
    await state.s3?.close();
    await rm(dir, { recursive: true, force: true });
  });
  return state;
}

function s3Client(endpoint: string): S3Client {
  return new S3Client({
    ...cloudsnapS3Config({ AWS_ENDPOINT_URL_S3: endpoint }),
    endpoint,
    region: "local",
    credentials: { accessKeyId: "local", secretAccessKey: "local" },
  });
}

/** A volume in memory: its bytes, and the ranges written since it was last uploaded. */
export class MemoryVolume {
  readonly bytes: Buffer;
  private changed: ByteRange[] = [];
  constructor(
    sizeBytes: number,
    readonly id = crypto.randomUUID(),
  ) {
    this.bytes = Buffer.alloc(sizeBytes);
  }

  write(offset: number, data: Buffer): void {
    data.copy(this.bytes, offset);
    this.changed.push({ offset, length: data.length });
  }

  /** A frozen copy, read like a snapshot: everything, or what changed since the last upload. */
  snapshot(incremental: boolean): UploadSource {
    const frozen = Buffer.from(this.bytes);
    const runs = incremental ? this.changed : [{ offset: 0, length: frozen.length }];
    this.changed = [];
    return {
      sizeBytes: frozen.length,
      runs,
      read: async (offset, length) => Buffer.from(frozen.subarray(offset, offset + length)),
    };
  }
}

/** One test process writes each volume: nothing to exclude, so the lease is always confirmed. */
export const SOLE_WRITER: HeldLease = { confirm: async () => {} };

export function repositoryOn(
  bucket: CloudsnapBucket,
  passphrase = DEFAULT_PASSPHRASE,
  packs = { targetBytes: 4 * MiB, concurrency: 2 },
): CloudsnapRepository {
  return new CloudsnapRepository(
    bucket,
    VolumeKeyProtection.passphraseOnly(async () => passphrase),
    packs,
  );
}

/** Takes a cloudsnap of the volume: of what changed since its latest one, or of everything. */
export async function take(
  repo: CloudsnapRepository,
  volume: MemoryVolume,
  options: { incremental?: boolean; lease?: HeldLease } = {},
) {
  const since = options.incremental === false ? undefined : (await repo.latest(volume.id))?.snapshotId;
  return repo.take(
    {
      volumeId: volume.id,
      volumeName: "pg-data",
      replicationFactor: 2,
      snapshotId: crypto.randomUUID(),
      source: volume.snapshot(since !== undefined),
      ...(since === undefined ? {} : { since }),
    },
    options.lease ?? SOLE_WRITER,
  );
}

/** Restores a cloudsnap into memory; `writes` are the requests the target got, as [offset, length]. */
export async function restored(repo: CloudsnapRepository, cloudsnapId: string, sizeBytes: number) {
  const target = Buffer.alloc(sizeBytes);
  const writes: [number, number][] = [];
  const progress = await repo.restore(cloudsnapId, async (offset, data) => {
    writes.push([offset, data.length]);
    data.copy(target, offset);
  });
  return { target, progress, writes };
}

export async function keysUnder(bucket: CloudsnapBucket, prefix: string): Promise<string[]> {
  const keys: string[] = [];
  for await (const { key } of bucket.list(prefix)) keys.push(key);
  return keys;
}

/** The volume's keys, as a restore with the suite's passphrase recovers them (one scrypt per suite). */
export function keysOf(bucket: CloudsnapBucket, volumeId: string): Promise<VolumeKeys> {
  suiteProtection ??= VolumeKeyProtection.passphraseOnly(async () => DEFAULT_PASSPHRASE);
  return loadVolumeKeys(bucket, volumeId, suiteProtection);
}
let suiteProtection: VolumeKeyProtection | undefined;

/** A cloudsnap's manifest as the bucket holds it, and the keys that open it. */
export async function manifestOf(bucket: CloudsnapBucket, cloudsnapId: string) {
  const volumeId = volumeOfCloudsnap(cloudsnapId);
  const keys = await keysOf(bucket, volumeId);
  const key = manifestObject(volumeId, cloudsnapId);
  const manifest = await openManifest(await bucket.get(key), { volumeId, cloudsnapId }, keys, key);
  return { manifest, keys, key };
}

/**
 * A manifest in format 1, the layout before deltas, as the code of that time wrote it:
 *
 *   header length (u32) | header JSON (with the pack ids) | entry count (u32) |
 *   entries: chunk index (u32) | pack (u32, into the header's list) | offset (u32) | length (u32) | id (32)
 */
export function sealFormat1Manifest(manifest: Manifest, keys: VolumeKeys): Buffer {
  const packs = [...new Set([...manifest.chunks.values()].map((location) => location.pack))];
  const entries = Buffer.alloc(manifest.chunks.size * 48);
  let at = 0;
  for (const [index, location] of [...manifest.chunks].sort(([a], [b]) => a - b)) {
    if (location.delta !== undefined) throw new Error("format 1 has no deltas");
    at = entries.writeUInt32BE(index, at);
    at = entries.writeUInt32BE(packs.indexOf(location.pack), at);
    at = entries.writeUInt32BE(location.offset, at);
    at = entries.writeUInt32BE(location.length, at);
    at += Buffer.from(location.id, "hex").copy(entries, at);
  }
  const { chunks: _, ...header } = manifest;
  const headerJson = Buffer.from(JSON.stringify({ ...header, format: 1, packs }));
  const lengths = Buffer.alloc(4);
  lengths.writeUInt32BE(headerJson.length);
  const count = Buffer.alloc(4);
  count.writeUInt32BE(manifest.chunks.size);
  return seal(
    deflateRawSync(Buffer.concat([lengths, headerJson, count, entries])),
    keys.manifestKey,
    Buffer.from(`strata cloudsnap manifest ${manifest.volumeId} ${manifest.cloudsnapId}`),
  );
}
