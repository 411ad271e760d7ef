import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { S3Client } from "@aws-sdk/client-s3";
import { afterAll, beforeAll } from "vitest";
import type { ByteRange } from "../../agent/block-device.js";
import { CloudsnapRepository } from "../../agent/cloudsnap/repository.js";
import type { UploadSource } from "../../agent/cloudsnap/upload.js";
import { VolumeKeyProtection } from "../../agent/cloudsnap/volume-key.js";
import { CloudsnapBucket } from "../../core/cloud/cloudsnap-bucket.js";
import { cloudsnapS3Config } from "../../core/cloud/s3-client.js";
import type { HeldLease } from "../../core/state/leases.js";
import { type LocalS3, startLocalS3 } from "../../infra/local/s3/local-s3.js";

export const MiB = 1024 * 1024;

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
  passphrase = "correct horse battery staple",
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
