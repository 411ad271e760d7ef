import { hkdfSync, randomBytes, scrypt } from "node:crypto";
import { promisify } from "node:util";
import { z } from "zod";
import { GCM_NONCE_BYTES, seal, unseal } from "./sealing.js";

/**
 * The keys of a volume's cloudsnaps. One random 256-bit data key per volume encrypts its chunks;
 * it is stored only wrapped: by KMS in AWS, locally by a key-encryption key derived from the
 * operator's passphrase. Subkeys are derived from the data key with HKDF-SHA256, one per use, so
 * the key that names chunks never encrypts and the keys that encrypt never name.
 */

export const DATA_KEY_BYTES = 32;

/**
 * scrypt with N = 2^17, r = 8, p = 1: 128 MiB and a few hundred milliseconds per derivation, once per
 * process and repository (OWASP's recommended minimum is N = 2^17 for scrypt). The salt is random
 * per repository and stored beside the wrapped keys, so equal passphrases give unrelated keys.
 */
export const PASSPHRASE_KDF = { name: "scrypt", N: 2 ** 17, r: 8, p: 1, saltBytes: 16 } as const;

const scryptAsync = promisify(scrypt) as (
  password: string,
  salt: Buffer,
  keylen: number,
  options: { N: number; r: number; p: number; maxmem: number },
) => Promise<Buffer>;

/** The parameters a repository stores so any cluster with the passphrase derives the same key. */
export const PassphraseKdf = z.object({
  name: z.literal("scrypt"),
  N: z.number().int().positive(),
  r: z.number().int().positive(),
  p: z.number().int().positive(),
  salt: z.base64(),
});
export type PassphraseKdf = z.infer<typeof PassphraseKdf>;

export function newPassphraseKdf(): PassphraseKdf {
  const { name, N, r, p, saltBytes } = PASSPHRASE_KDF;
  return { name, N, r, p, salt: randomBytes(saltBytes).toString("base64") };
}

/** The key-encryption key of a passphrase under a repository's KDF parameters. */
export async function passphraseKey(passphrase: string, kdf: PassphraseKdf): Promise<Buffer> {
  if (passphrase.length === 0) throw new Error("the cloudsnap passphrase is empty");
  return scryptAsync(passphrase, Buffer.from(kdf.salt, "base64"), DATA_KEY_BYTES, {
    N: kdf.N,
    r: kdf.r,
    p: kdf.p,
    // scrypt needs 128 · N · r bytes; Node refuses above 32 MiB unless told.
    maxmem: 256 * kdf.N * kdf.r,
  });
}

/** A data key wrapped by a key-encryption key: AES-256-GCM, the volume's id as associated data. */
export const WrappedKey = z.object({ nonce: z.base64(), ciphertext: z.base64() });
export type WrappedKey = z.infer<typeof WrappedKey>;

export function newDataKey(): Buffer {
  return randomBytes(DATA_KEY_BYTES);
}

export function wrapDataKey(dataKey: Buffer, keyEncryptionKey: Buffer, volumeId: string): WrappedKey {
  const sealed = seal(dataKey, keyEncryptionKey, Buffer.from(volumeId));
  return {
    nonce: sealed.subarray(0, GCM_NONCE_BYTES).toString("base64"),
    ciphertext: sealed.subarray(GCM_NONCE_BYTES).toString("base64"),
  };
}

/** Unwraps a data key; a wrong passphrase (or key) is said as such, not as a cipher error. */
export function unwrapDataKey(wrapped: WrappedKey, keyEncryptionKey: Buffer, volumeId: string): Buffer {
  const sealed = Buffer.concat([
    Buffer.from(wrapped.nonce, "base64"),
    Buffer.from(wrapped.ciphertext, "base64"),
  ]);
  const dataKey = unseal(sealed, keyEncryptionKey, Buffer.from(volumeId));
  if (dataKey === undefined)
    throw new Error(`the data key of volume ${volumeId} does not unwrap: wrong passphrase or key`);
  return dataKey;
}

/** The keys of a volume's cloudsnap objects, derived from its data key. */
export interface VolumeKeys {
  /** Names chunks: HMAC-SHA256 of the plaintext, equal for equal chunks, revealing nothing else. */
  idKey: Buffer;
  /** Encrypts chunks: AES-256-GCM. */
  encryptionKey: Buffer;
  /** Encrypts manifests (which cloudsnap holds which chunk where): AES-256-GCM. */
  manifestKey: Buffer;
}

export function volumeKeys(dataKey: Buffer): VolumeKeys {
  const derive = (info: string) =>
    Buffer.from(hkdfSync("sha256", dataKey, Buffer.alloc(0), info, DATA_KEY_BYTES));
  return {
    idKey: derive("strata cloudsnap chunk id"),
    encryptionKey: derive("strata cloudsnap chunk encryption"),
    manifestKey: derive("strata cloudsnap manifest encryption"),
  };
}
