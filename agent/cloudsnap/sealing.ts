import { createCipheriv, createDecipheriv, randomBytes } from "node:crypto";

/**
 * AES-256-GCM as every cloudsnap object uses it: a fresh 96-bit random nonce per seal (a key seals
 * far fewer than 2^32 messages, NIST's bound for random nonces), the 128-bit tag last, and
 * associated data that binds the ciphertext to what it is (a chunk's id, a manifest's cloudsnap, a
 * data key's volume), so one sealed object cannot be passed off as another.
 *
 *   nonce (12) | ciphertext | tag (16)
 */
export const GCM_NONCE_BYTES = 12;
export const GCM_TAG_BYTES = 16;
export const SEAL_OVERHEAD_BYTES = GCM_NONCE_BYTES + GCM_TAG_BYTES;

export function seal(plaintext: Buffer, key: Buffer, associatedData: Buffer): Buffer {
  const nonce = randomBytes(GCM_NONCE_BYTES);
  const cipher = createCipheriv("aes-256-gcm", key, nonce).setAAD(associatedData);
  return Buffer.concat([nonce, cipher.update(plaintext), cipher.final(), cipher.getAuthTag()]);
}

/** The plaintext, or undefined when the tag does not verify (wrong key, altered bytes, other AAD). */
export function unseal(sealed: Buffer, key: Buffer, associatedData: Buffer): Buffer | undefined {
  if (sealed.length < SEAL_OVERHEAD_BYTES) return undefined;
  const decipher = createDecipheriv("aes-256-gcm", key, sealed.subarray(0, GCM_NONCE_BYTES))
    .setAAD(associatedData)
    .setAuthTag(sealed.subarray(sealed.length - GCM_TAG_BYTES));
  try {
    const plaintext = decipher.update(sealed.subarray(GCM_NONCE_BYTES, sealed.length - GCM_TAG_BYTES));
    const rest = decipher.final();
    // GCM is a stream mode: final() checks the tag and returns nothing, so no copy of a 1 MiB chunk.
    return rest.length === 0 ? plaintext : Buffer.concat([plaintext, rest]);
  } catch {
    return undefined;
  }
}
