import { z } from "zod";
import type { CloudsnapBucket } from "../../core/cloud/cloudsnap-bucket.js";
import { keyObject } from "../../core/cloud/cloudsnap-layout.js";
import {
  CLOUDSNAP_PASSPHRASE_FILE_VARIABLE,
  CLOUDSNAP_PASSPHRASE_VARIABLE,
} from "../../core/cloud/cloudsnap-passphrase.js";
import { conflict, StrataError } from "../../core/errors.js";
import {
  newDataKey,
  newPassphraseKdf,
  PassphraseKdf,
  passphraseKey,
  unwrapDataKey,
  type VolumeKeys,
  volumeKeys,
  WrappedKey,
  wrapDataKey,
} from "./keys.js";

/**
 * How a volume's data key is kept in the bucket: wrapped under a passphrase-derived key (the local
 * cluster), or by KMS (in AWS: `keyId` is the key's ARN as KMS answered it, so a file written
 * through an alias still names its key after the alias moves).
 */
export const KeyProtection = z.discriminatedUnion("kind", [
  z.strictObject({ kind: z.literal("passphrase"), kdf: PassphraseKdf, wrapped: WrappedKey }),
  z.strictObject({ kind: z.literal("kms"), keyId: z.string().min(1), ciphertext: z.base64() }),
]);
export type KeyProtection = z.infer<typeof KeyProtection>;
export type ProtectionKind = KeyProtection["kind"];
export type ProtectionOf<K extends ProtectionKind> = Extract<KeyProtection, { kind: K }>;

const VolumeKeyFile = z.strictObject({
  format: z.literal(1),
  volumeId: z.string(),
  protection: KeyProtection,
});

/** A volume's key file: whose data key it holds and where it is, named by every error about it. */
export interface KeyFile {
  volumeId: string;
  /** The object, as `s3://bucket/key`. */
  where: string;
}

/** Wraps new data keys one way, and unwraps the keys it wrapped. */
export interface KeyProtector<K extends ProtectionKind> {
  protect(dataKey: Buffer, file: KeyFile): Promise<ProtectionOf<K>>;
  recover(protection: ProtectionOf<K>, file: KeyFile): Promise<Buffer>;
}

/**
 * A repository's ways of keeping data keys: new keys are protected the cluster's own way, and a
 * stored key is recovered the way its file says, so a cluster that moved to KMS still restores the
 * cloudsnaps its passphrase protected, and one with a passphrase restores KMS-protected ones when
 * it can reach the key. A way the repository lacks is named with the key file that needs it.
 */
export class VolumeKeyProtection {
  constructor(
    readonly protectWith: ProtectionKind,
    private readonly protectors: { passphrase?: KeyProtector<"passphrase">; kms?: KeyProtector<"kms"> },
  ) {
    if (protectors[protectWith] === undefined)
      throw new Error(`new data keys are to be protected by ${protectWith}, and no such protector is given`);
  }

  /** A passphrase and nothing else, as a local cluster without KMS has. */
  static passphraseOnly(passphrase: () => Promise<string>): VolumeKeyProtection {
    return new VolumeKeyProtection("passphrase", { passphrase: new PassphraseProtector(passphrase) });
  }

  async protect(dataKey: Buffer, file: KeyFile): Promise<KeyProtection> {
    return this.protectors[this.protectWith]!.protect(dataKey, file);
  }

  async recover(protection: KeyProtection, file: KeyFile): Promise<Buffer> {
    switch (protection.kind) {
      case "passphrase": {
        const { passphrase } = this.protectors;
        if (passphrase === undefined)
          throw conflict(
            `the key file ${file.where} is protected by a passphrase, and none is configured: set ${CLOUDSNAP_PASSPHRASE_VARIABLE}, or ${CLOUDSNAP_PASSPHRASE_FILE_VARIABLE} to a file holding it`,
          );
        return passphrase.recover(protection, file);
      }
      case "kms": {
        const { kms } = this.protectors;
        if (kms === undefined)
          throw conflict(
            `the key file ${file.where} is wrapped by the KMS key ${protection.keyId}: restoring it needs KMS (kms:Decrypt on that key), and this repository is configured with a passphrase only`,
          );
        return kms.recover(protection, file);
      }
    }
  }
}

/**
 * Wraps under a key derived from a passphrase. This process's new keys share one salt, so one
 * scrypt derivation serves them all; keys another cluster wrote carry their own salt, and each
 * salt is derived once.
 */
export class PassphraseProtector implements KeyProtector<"passphrase"> {
  private readonly ownKdf = newPassphraseKdf();
  private readonly derived = new Map<string, Promise<Buffer>>();

  /** `passphrase` is asked for when a key is first needed: listing cloudsnaps needs none. */
  constructor(private readonly passphrase: () => Promise<string>) {}

  async protect(dataKey: Buffer, file: KeyFile): Promise<ProtectionOf<"passphrase">> {
    const kek = await this.keyFor(this.ownKdf, file);
    return { kind: "passphrase", kdf: this.ownKdf, wrapped: wrapDataKey(dataKey, kek, file.volumeId) };
  }

  async recover(protection: ProtectionOf<"passphrase">, file: KeyFile): Promise<Buffer> {
    const kek = await this.keyFor(protection.kdf, file);
    try {
      return unwrapDataKey(protection.wrapped, kek, file.volumeId);
    } catch (error) {
      throw naming(file, error);
    }
  }

  private async keyFor(kdf: PassphraseKdf, file: KeyFile): Promise<Buffer> {
    const cacheKey = JSON.stringify(kdf);
    let key = this.derived.get(cacheKey);
    if (key === undefined) {
      key = this.passphrase().then((passphrase) => passphraseKey(passphrase, kdf));
      this.derived.set(cacheKey, key);
      key.catch(() => this.derived.delete(cacheKey));
    }
    try {
      return await key;
    } catch (error) {
      throw naming(file, error);
    }
  }
}

/** The error with the key file it concerns, keeping its kind (a missing passphrase stays a precondition). */
function naming(file: KeyFile, error: unknown): Error {
  const message = `${(error as Error).message} (the key file ${file.where})`;
  return error instanceof StrataError ? new StrataError(error.code, message) : new Error(message);
}

/** The keys of a volume that has cloudsnaps; refused, naming the object, when it has none. */
export async function loadVolumeKeys(
  bucket: CloudsnapBucket,
  volumeId: string,
  protection: VolumeKeyProtection,
): Promise<VolumeKeys> {
  return keysFrom(bucket, volumeId, await bucket.get(keyObject(volumeId)), protection);
}

/**
 * The volume's keys, made on its first cloudsnap: the wrapped key is written before anything it
 * encrypts. Only the holder of the volume's cloudsnap lease calls this, so two keys never race.
 */
export async function ensureVolumeKeys(
  bucket: CloudsnapBucket,
  volumeId: string,
  protection: VolumeKeyProtection,
): Promise<VolumeKeys> {
  const stored = await bucket.getIfExists(keyObject(volumeId));
  if (stored !== undefined) return keysFrom(bucket, volumeId, stored, protection);
  const dataKey = newDataKey();
  const where = bucket.where(keyObject(volumeId));
  const file = { format: 1, volumeId, protection: await protection.protect(dataKey, { volumeId, where }) };
  await bucket.put(
    keyObject(volumeId),
    Buffer.from(`${JSON.stringify(file, null, 1)}\n`),
    "application/json",
  );
  return volumeKeys(dataKey);
}

async function keysFrom(
  bucket: CloudsnapBucket,
  volumeId: string,
  body: Buffer,
  protection: VolumeKeyProtection,
): Promise<VolumeKeys> {
  const where = bucket.where(keyObject(volumeId));
  let file: z.infer<typeof VolumeKeyFile>;
  try {
    file = VolumeKeyFile.parse(JSON.parse(body.toString("utf8")));
  } catch {
    throw new Error(`the key file ${where} is malformed`);
  }
  if (file.volumeId !== volumeId) throw new Error(`the key file ${where} is volume ${file.volumeId}'s`);
  return volumeKeys(await protection.recover(file.protection, { volumeId, where }));
}
