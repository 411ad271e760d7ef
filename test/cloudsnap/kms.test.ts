import { randomBytes } from "node:crypto";
import {
  CreateAliasCommand,
  CreateKeyCommand,
  DecryptCommand,
  DisableKeyCommand,
  EnableKeyCommand,
  type KeyMetadata,
  KMSClient,
} from "@aws-sdk/client-kms";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { configuredRepository } from "../../agent/cloudsnap/configured.js";
import { dataKeyContext, KmsProtector } from "../../agent/cloudsnap/kms-protector.js";
import { CloudsnapRepository } from "../../agent/cloudsnap/repository.js";
import { VolumeKeyProtection } from "../../agent/cloudsnap/volume-key.js";
import { catalogObject, keyObject } from "../../core/cloud/cloudsnap-layout.js";
import { checkKmsKeyId, kmsKeyRegion } from "../../core/cloud/kms-client.js";
import { LOCAL_CREDENTIALS } from "../../core/local-aws-environment.js";
import { type AwsEndpoint, type AwsProtocolHandler, startAwsEndpoint } from "../../infra/local/aws/http.js";
import { kmsProtocol, LocalKms } from "../../infra/local/aws/kms-endpoint.js";
import { AwsServiceError } from "../../infra/local/aws/service-error.js";
import { bucketPerSuite, MemoryVolume, MiB, repositoryOn, restored, take } from "./support.js";

/**
 * Cloudsnaps whose data keys KMS wraps: the real KMS client against the local cloud's KMS endpoint
 * (which really encrypts, and binds each ciphertext to its key and encryption context), the bucket
 * on s3rver, and the repository built from the environment as an agent builds it.
 */

const SIZE = 8 * MiB;
const ALIAS = "alias/strata-cloudsnaps";
const PASSPHRASE = "correct horse battery staple";
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED = "true";
const storage = bucketPerSuite();
const localKms = new LocalKms("local");
let kmsEndpoint: AwsEndpoint;
let admin: KMSClient;
let key: KeyMetadata;

beforeAll(async () => {
  kmsEndpoint = await startAwsEndpoint(kmsProtocol(localKms));
  // The agent's clients are given no endpoint: these variables are their only route.
  Object.assign(process.env, {
    AWS_ENDPOINT_URL_KMS: kmsEndpoint.url,
    AWS_ENDPOINT_URL_S3: storage.s3.endpoint,
    AWS_REGION: "local",
    AWS_ACCESS_KEY_ID: LOCAL_CREDENTIALS.accessKeyId,
    AWS_SECRET_ACCESS_KEY: LOCAL_CREDENTIALS.secretAccessKey,
  });
  admin = new KMSClient({});
  key = await newKey();
  await admin.send(new CreateAliasCommand({ AliasName: ALIAS, TargetKeyId: key.KeyId }));
});

afterAll(async () => {
  admin?.destroy();
  await kmsEndpoint?.close();
});

async function newKey(): Promise<KeyMetadata> {
  return (await admin.send(new CreateKeyCommand({ Description: "strata cloudsnaps" }))).KeyMetadata!;
}

/** The repository an agent builds from this environment (a new one per call: a new process). */
function configured(env: Record<string, string> = {}): CloudsnapRepository {
  return configuredRepository({
    ...process.env,
    STRATA_CLOUDSNAP_BUCKET: storage.s3.bucket,
    STRATA_CLOUDSNAP_KMS_KEY_ID: "",
    STRATA_CLOUDSNAP_PASSPHRASE: "",
    STRATA_CLOUDSNAP_PASSPHRASE_FILE: "",
    ...env,
  })();
}
const withKms = (env: Record<string, string> = {}) =>
  configured({ STRATA_CLOUDSNAP_KMS_KEY_ID: ALIAS, ...env });
const withPassphrase = () => configured({ STRATA_CLOUDSNAP_PASSPHRASE: PASSPHRASE });

const where = (volumeId: string) => storage.bucket.where(keyObject(volumeId));

async function keyFile(volumeId: string) {
  return JSON.parse((await storage.bucket.get(keyObject(volumeId))).toString("utf8"));
}

async function volumeWithCloudsnap(repo: CloudsnapRepository) {
  const volume = new MemoryVolume(SIZE);
  volume.write(MiB, randomBytes(2 * MiB));
  const cloudsnap = await take(repo, volume);
  return { volume, cloudsnap };
}

/** A restore that fails, with what it wrote first: nothing, when the key cannot be had. */
async function failedRestore(repo: CloudsnapRepository, cloudsnapId: string): Promise<Error> {
  let writes = 0;
  const error = await repo
    .restore(cloudsnapId, async () => void writes++)
    .then(
      () => new Error("the restore succeeded"),
      (refused: Error) => refused,
    );
  expect(writes).toBe(0);
  return error;
}

async function restoresIdentical(repo: CloudsnapRepository, cloudsnapId: string, volume: MemoryVolume) {
  expect(Buffer.compare((await restored(repo, cloudsnapId, SIZE)).target, volume.bytes)).toBe(0);
}

describe("cloudsnaps with data keys wrapped by KMS", () => {
  it("restore byte for byte, full and incremental, with the key file naming the key's ARN and binding the volume", async () => {
    const repo = withKms();
    const volume = new MemoryVolume(SIZE);
    volume.write(0, randomBytes(3 * MiB));
    const full = await take(repo, volume);
    const afterFull = Buffer.from(volume.bytes);
    volume.write(5 * MiB, randomBytes(MiB));
    const incremental = await take(repo, volume);
    expect(incremental.incremental).toBe(true);

    const elsewhere = withKms(); // another process, with the bucket and the key alone
    expect(Buffer.compare((await restored(elsewhere, full.id, SIZE)).target, afterFull)).toBe(0);
    await restoresIdentical(elsewhere, incremental.id, volume);

    const file = await keyFile(volume.id);
    // Configured by alias, stored by ARN: the file keeps naming its key wherever the alias goes.
    expect(file).toEqual({
      format: 1,
      volumeId: volume.id,
      protection: { kind: "kms", keyId: key.Arn, ciphertext: expect.any(String) },
    });
    const ciphertext = Buffer.from(file.protection.ciphertext, "base64");
    const opened = await admin.send(
      new DecryptCommand({ CiphertextBlob: ciphertext, EncryptionContext: dataKeyContext(volume.id) }),
    );
    expect(opened.Plaintext).toHaveLength(32);
    const elsewhereContext = await admin
      .send(new DecryptCommand({ CiphertextBlob: ciphertext, EncryptionContext: dataKeyContext("other") }))
      .catch((error: Error) => error);
    expect((elsewhereContext as Error).name).toBe("InvalidCiphertextException");
  });

  it("are protected by the passphrase when no KMS key is configured", async () => {
    const { volume, cloudsnap } = await volumeWithCloudsnap(withPassphrase());
    expect((await keyFile(volume.id)).protection.kind).toBe("passphrase");
    await restoresIdentical(withPassphrase(), cloudsnap.id, volume);
  });

  it("still restore when the cluster's configured key is another one: the file names its own", async () => {
    const { volume, cloudsnap } = await volumeWithCloudsnap(withKms());
    const newer = await newKey();
    const moved = withKms({ STRATA_CLOUDSNAP_KMS_KEY_ID: newer.Arn! });
    await restoresIdentical(moved, cloudsnap.id, volume);
    const { volume: fresh } = await volumeWithCloudsnap(moved);
    expect((await keyFile(fresh.id)).protection.keyId).toBe(newer.Arn);
    expect((await keyFile(volume.id)).protection.keyId).toBe(key.Arn);
  });

  it("refuse a key file moved into another volume's place or altered, naming the object; the right file restores again", async () => {
    const repo = withKms();
    const first = await volumeWithCloudsnap(repo);
    const second = await volumeWithCloudsnap(repo);
    const secondsOwn = await storage.bucket.get(keyObject(second.volume.id));
    const firsts = await keyFile(first.volume.id);
    const put = (file: unknown) =>
      storage.bucket.put(keyObject(second.volume.id), Buffer.from(JSON.stringify(file)), "application/json");

    await put(firsts);
    expect((await failedRestore(repo, second.cloudsnap.id)).message).toBe(
      `the key file ${where(second.volume.id)} is volume ${first.volume.id}'s`,
    );
    // Claiming to be the second volume's does not help: KMS binds the ciphertext to the first.
    await put({ ...firsts, volumeId: second.volume.id });
    expect((await failedRestore(repo, second.cloudsnap.id)).message).toBe(
      `${where(second.volume.id)} does not unwrap under the KMS key ${key.Arn}: its ciphertext is damaged, or it was written for another volume than ${second.volume.id}`,
    );
    const other = await newKey();
    await put({
      ...JSON.parse(secondsOwn.toString("utf8")),
      protection: { ...firsts.protection, keyId: other.Arn },
    });
    expect((await failedRestore(repo, second.cloudsnap.id)).message).toBe(
      `${where(second.volume.id)} was not wrapped by the KMS key ${other.Arn}, the key it names: the file has been altered`,
    );

    await storage.bucket.put(keyObject(second.volume.id), secondsOwn, "application/json");
    await restoresIdentical(repo, second.cloudsnap.id, second.volume);
  });

  it("fail, naming the key and the file, while the key is disabled, lose nothing, and go on once it is enabled", async () => {
    const repo = withKms();
    const { volume, cloudsnap } = await volumeWithCloudsnap(repo);
    const stored = await storage.bucket.get(keyObject(volume.id));
    const atCloudsnap = Buffer.from(volume.bytes);
    const fresh = new MemoryVolume(SIZE);
    fresh.write(0, randomBytes(MiB));
    await admin.send(new DisableKeyCommand({ KeyId: key.KeyId }));
    try {
      expect((await failedRestore(repo, cloudsnap.id)).message).toBe(
        `the KMS key ${key.Arn} is disabled, so KMS will not unwrap ${where(volume.id)}: enable the key and try again`,
      );
      volume.write(0, randomBytes(4096));
      await expect(take(repo, volume)).rejects.toThrow(`the KMS key ${key.Arn} is disabled`);
      // A new volume's key is wrapped through the alias, which is what the message names.
      await expect(take(repo, fresh)).rejects.toThrow(
        `the KMS key ${ALIAS} is disabled, so KMS will not wrap the data key of ${where(fresh.id)}: enable the key and try again`,
      );
      expect(await storage.bucket.getIfExists(keyObject(fresh.id))).toBeUndefined();
      expect(await storage.bucket.getIfExists(catalogObject(fresh.id))).toBeUndefined();
      expect((await repo.list(volume.id)).map((c) => c.id)).toEqual([cloudsnap.id]);
      expect((await storage.bucket.get(keyObject(volume.id))).equals(stored)).toBe(true);
    } finally {
      await admin.send(new EnableKeyCommand({ KeyId: key.KeyId }));
    }
    expect(Buffer.compare((await restored(repo, cloudsnap.id, SIZE)).target, atCloudsnap)).toBe(0);
    // The failed take's snapshot is gone with it: the next one reads the volume whole.
    const next = await take(repo, volume, { incremental: false });
    await restoresIdentical(repo, next.id, volume);
    const first = await take(repo, fresh);
    await restoresIdentical(repo, first.id, fresh);
  });

  it("are not restored by a repository that has a passphrase only: it says KMS is needed, and for which file", async () => {
    const { volume, cloudsnap } = await volumeWithCloudsnap(withKms());
    const passphraseOnly = repositoryOn(storage.bucket, PASSPHRASE);
    expect((await failedRestore(passphraseOnly, cloudsnap.id)).message).toBe(
      `the key file ${where(volume.id)} is wrapped by the KMS key ${key.Arn}: restoring it needs KMS (kms:Decrypt on that key), and this repository is configured with a passphrase only`,
    );
    expect((await passphraseOnly.list(volume.id)).map((c) => c.id)).toEqual([cloudsnap.id]);
  });

  it("restore across protections: each key file the way it says, with what the cluster has", async () => {
    const local = await volumeWithCloudsnap(withPassphrase());
    const aws = await volumeWithCloudsnap(withKms());

    const kmsWithPassphrase = withKms({ STRATA_CLOUDSNAP_PASSPHRASE: PASSPHRASE });
    await restoresIdentical(kmsWithPassphrase, local.cloudsnap.id, local.volume);
    // Its next cloudsnap of that volume keeps the volume's key, and so its file.
    local.volume.write(6 * MiB, randomBytes(MiB));
    await take(kmsWithPassphrase, local.volume);
    expect((await keyFile(local.volume.id)).protection.kind).toBe("passphrase");
    await restoresIdentical(
      withPassphrase(),
      (await kmsWithPassphrase.latest(local.volume.id))!.id,
      local.volume,
    );

    await restoresIdentical(withPassphrase(), aws.cloudsnap.id, aws.volume);

    expect((await failedRestore(withKms(), local.cloudsnap.id)).message).toBe(
      `no cloudsnap passphrase: set STRATA_CLOUDSNAP_PASSPHRASE, or STRATA_CLOUDSNAP_PASSPHRASE_FILE to a file holding it (the key file ${where(local.volume.id)})`,
    );
    const kmsOnly = new CloudsnapRepository(
      storage.bucket,
      new VolumeKeyProtection("kms", { kms: new KmsProtector(ALIAS) }),
    );
    expect((await failedRestore(kmsOnly, local.cloudsnap.id)).message).toBe(
      `the key file ${where(local.volume.id)} is protected by a passphrase, and none is configured: set STRATA_CLOUDSNAP_PASSPHRASE, or STRATA_CLOUDSNAP_PASSPHRASE_FILE to a file holding it`,
    );
  });

  it("refuse a KMS key id of the wrong form, and one KMS does not know, writing nothing", async () => {
    const volume = new MemoryVolume(SIZE);
    volume.write(0, randomBytes(MiB));
    await expect(take(withKms({ STRATA_CLOUDSNAP_KMS_KEY_ID: "cloudsnap key" }), volume)).rejects.toThrow(
      'STRATA_CLOUDSNAP_KMS_KEY_ID is "cloudsnap key": expected a KMS key id, a key ARN, an alias name (alias/...) or an alias ARN',
    );
    await expect(take(withKms({ STRATA_CLOUDSNAP_KMS_KEY_ID: "alias/missing" }), volume)).rejects.toThrow(
      `the KMS key alias/missing, needed to wrap the data key of ${where(volume.id)}, does not exist in this account and region (NotFoundException: Alias arn:aws:kms:local:000000000000:alias/missing is not found.)`,
    );
    expect(await storage.bucket.getIfExists(keyObject(volume.id))).toBeUndefined();
  });
});

describe("a configured KMS key id", () => {
  it("is any form KMS takes, and a key in another region is asked of KMS there", () => {
    const id = "1234abcd-12ab-34cd-56ef-1234567890ab";
    for (const form of [
      id,
      "mrk-1234abcd12ab34cd56ef1234567890ab",
      "alias/strata/cloudsnaps",
      `arn:aws:kms:eu-west-1:111122223333:key/${id}`,
      "arn:aws-cn:kms:cn-north-1:111122223333:alias/strata",
    ])
      expect(checkKmsKeyId(form)).toBe(form);
    for (const wrong of ["1234ABCD", "strata", `arn:aws:kms:eu-west-1:111122223333:key/strata`, "alias/"])
      expect(() => checkKmsKeyId(wrong)).toThrow(`STRATA_CLOUDSNAP_KMS_KEY_ID is "${wrong}"`);
    expect(kmsKeyRegion(`arn:aws:kms:eu-west-1:111122223333:key/${id}`)).toBe("eu-west-1");
    expect(kmsKeyRegion("alias/strata")).toBeUndefined();
  });
});

/**
 * Refusals KMS gives that the local endpoint has no cause to (no IAM, no key deletion, no load):
 * the same endpoint behind a switch that refuses requests with KMS's code and status, so the real
 * client parses them, and retries the transient ones, as it would AWS's.
 */
class RefusingKms {
  private refusal: { code: string; message: string; status: number; times: number } | undefined;
  refused = 0;
  answered = 0;
  endpoint!: AwsEndpoint;
  client!: KMSClient;

  async start(): Promise<void> {
    const inner = kmsProtocol(localKms);
    const handler: AwsProtocolHandler = {
      answer: async (request) => {
        if (this.refusal !== undefined && this.refusal.times > 0) {
          this.refusal.times--;
          this.refused++;
          throw new AwsServiceError(this.refusal.code, this.refusal.message, this.refusal.status);
        }
        this.answered++;
        return inner.answer(request);
      },
      refusal: inner.refusal,
    };
    this.endpoint = await startAwsEndpoint(handler);
    this.client = new KMSClient({ endpoint: this.endpoint.url });
  }

  refuse(code: string, message: string, status: number, times = Number.POSITIVE_INFINITY): void {
    this.refusal = { code, message, status, times };
    this.refused = 0;
    this.answered = 0;
  }

  answerAll(): void {
    this.refusal = undefined;
  }

  repository(): CloudsnapRepository {
    return new CloudsnapRepository(
      storage.bucket,
      new VolumeKeyProtection("kms", { kms: new KmsProtector(ALIAS, () => this.client) }),
    );
  }

  async close(): Promise<void> {
    this.client?.destroy();
    await this.endpoint?.close();
  }
}

describe("KMS refusals the local endpoint has no cause for", () => {
  const kms = new RefusingKms();
  beforeAll(() => kms.start());
  afterAll(() => kms.close());

  it("throttling is retried by the SDK, and past its attempts is one sentence naming the key and the file", async () => {
    const repo = kms.repository();
    const volume = new MemoryVolume(SIZE);
    volume.write(0, randomBytes(MiB));
    kms.refuse("ThrottlingException", "Rate exceeded", 400, 2);
    const cloudsnap = await take(repo, volume);
    expect({ refused: kms.refused, answered: kms.answered }).toEqual({ refused: 2, answered: 1 });

    kms.refuse("ThrottlingException", "Rate exceeded", 400);
    expect((await failedRestore(repo, cloudsnap.id)).message).toBe(
      `KMS did not unwrap ${where(volume.id)} with the KMS key ${key.Arn} in 3 attempts (ThrottlingException: Rate exceeded)`,
    );
    kms.refuse("KMSInternalException", "internal error", 500);
    expect((await failedRestore(repo, cloudsnap.id)).message).toBe(
      `KMS did not unwrap ${where(volume.id)} with the KMS key ${key.Arn} in 3 attempts (KMSInternalException: internal error)`,
    );
    expect(kms.refused).toBe(3);
  });

  it("access denied and a key pending deletion are named with the key and the file, not retried", async () => {
    const repo = kms.repository();
    kms.answerAll();
    const volume = new MemoryVolume(SIZE);
    volume.write(0, randomBytes(MiB));
    const cloudsnap = await take(repo, volume);

    kms.refuse(
      "AccessDeniedException",
      "User: arn:aws:sts::123456789012:assumed-role/strata-agent is not authorized to perform: kms:Decrypt",
      400,
    );
    expect((await failedRestore(repo, cloudsnap.id)).message).toBe(
      `KMS denied access to the KMS key ${key.Arn}, needed to unwrap ${where(volume.id)}: the role needs kms:Encrypt and kms:Decrypt on it with the encryption context of volume ${volume.id} (AccessDeniedException: User: arn:aws:sts::123456789012:assumed-role/strata-agent is not authorized to perform: kms:Decrypt)`,
    );
    expect(kms.refused).toBe(1);

    kms.refuse("KMSInvalidStateException", `${key.Arn} is pending deletion.`, 400);
    expect((await failedRestore(repo, cloudsnap.id)).message).toBe(
      `the KMS key ${key.Arn} cannot be used to unwrap ${where(volume.id)} in its current state (KMSInvalidStateException: ${key.Arn} is pending deletion.)`,
    );
    expect(kms.refused).toBe(1);
  });

  it("no KMS to reach is said with the key and the file", async () => {
    const closed = await startAwsEndpoint(kmsProtocol(new LocalKms("local")));
    await closed.close();
    const unreachable = new KMSClient({ endpoint: closed.url });
    kms.answerAll();
    const { volume, cloudsnap } = await volumeWithCloudsnap(kms.repository());
    const repo = new CloudsnapRepository(
      storage.bucket,
      new VolumeKeyProtection("kms", { kms: new KmsProtector(ALIAS, () => unreachable) }),
    );
    const error = await failedRestore(repo, cloudsnap.id);
    unreachable.destroy();
    expect(error.message).toMatch(
      new RegExp(
        `^KMS could not be asked to unwrap ${where(volume.id)} with the KMS key ${key.Arn}: .*ECONNREFUSED`,
      ),
    );
  });
});
