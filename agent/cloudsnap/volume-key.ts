import { z } from "zod";
import type { CloudsnapBucket } from "../../core/cloud/cloudsnap-bucket.js";
import { keyObject } from "../../core/cloud/cloudsnap-layout.js";
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

/** How a volume's data key is kept in the bucket: wrapped under a passphrase-derived key (KMS in AWS comes with the deploy). */
export const KeyProtection = z.discriminatedUnion("kind", [
  z.strictObject({ kind: z.literal("passphrase"), kdf: PassphraseKdf, wrapped: WrappedKey }),
]);
export type KeyProtection = z.infer<typeof KeyProtection>;

const VolumeKeyFile = z.strictObject({
  format: z.literal(1),
  volumeId: z.string(),
  protection: KeyProtection,
});

/** Wraps new data keys and unwraps stored ones. */
export interface KeyProtector {
  protect(dataKey: Buffer, volumeId: string): Promise<KeyProtection>;
  recover(protection: KeyProtection, volumeId: string): Promise<Buffer>;
}

/**
 * Wraps under a key derived from a passphrase. This process's new keys share one salt, so one
 * scrypt derivation serves them all; keys another cluster wrote carry their own salt, and each
 * salt is derived once.
 */
export class PassphraseProtector implements KeyProtector {
  private readonly ownKdf = newPassphraseKdf();
  private readonly derived = new Map<string, Promise<Buffer>>();

  /** `passphrase` is asked for when a key is first needed: listing cloudsnaps needs none. */
  constructor(private readonly passphrase: () => Promise<string>) {}

  async protect(dataKey: Buffer, volumeId: string): Promise<KeyProtection> {
    const kek = await this.keyFor(this.ownKdf);
    return { kind: "passphrase", kdf: this.ownKdf, wrapped: wrapDataKey(dataKey, kek, volumeId) };
  }

  async recover(protection: KeyProtection, volumeId: string): Promise<Buffer> {
    return unwrapDataKey(protection.wrapped, await this.keyFor(protection.kdf), volumeId);
  }

  private keyFor(kdf: PassphraseKdf): Promise<Buffer> {
    const cacheKey = JSON.stringify(kdf);
    let key = this.derived.get(cacheKey);
    if (key === undefined) {
      key = this.passphrase().then((passphrase) => passphraseKey(passphrase, kdf));
      this.derived.set(cacheKey, key);
      key.catch(() => this.derived.delete(cacheKey));
    }
    return key;
  }
}

/** The keys of a volume that has cloudsnaps; refused, naming the object, when it has none. */
export async function loadVolumeKeys(
  bucket: CloudsnapBucket,
  volumeId: string,
  protector: KeyProtector,
): Promise<VolumeKeys> {
  return keysFrom(bucket, volumeId, await bucket.get(keyObject(volumeId)), protector);
}

/**
 * The volume's keys, made on its first cloudsnap: the wrapped key is written before anything it
 * encrypts. Only the holder of the volume's cloudsnap lease calls this, so two keys never race.
 */
export async function ensureVolumeKeys(
  bucket: CloudsnapBucket,
  volumeId: string,
  protector: KeyProtector,
): Promise<VolumeKeys> {
  const stored = await bucket.getIfExists(keyObject(volumeId));
  if (stored !== undefined) return keysFrom(bucket, volumeId, stored, protector);
  const dataKey = newDataKey();
  const file = { format: 1, volumeId, protection: await protector.protect(dataKey, volumeId) };
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
  protector: KeyProtector,
): Promise<VolumeKeys> {
  const where = bucket.where(keyObject(volumeId));
  let file: z.infer<typeof VolumeKeyFile>;
  try {
    file = VolumeKeyFile.parse(JSON.parse(body.toString("utf8")));
  } catch {
    throw new Error(`the key file ${where} is malformed`);
  }
  if (file.volumeId !== volumeId) throw new Error(`the key file ${where} is volume ${file.volumeId}'s`);
  return volumeKeys(await protector.recover(file.protection, volumeId));
}
