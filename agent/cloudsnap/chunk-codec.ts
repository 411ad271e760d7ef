import { createCipheriv, createDecipheriv, createHmac, randomBytes, timingSafeEqual } from "node:crypto";
import { promisify } from "node:util";
import { deflateRaw, inflateRaw } from "node:zlib";
import { type ChunkKeys, GCM_NONCE_BYTES, GCM_TAG_BYTES } from "./keys.js";

const deflate = promisify(deflateRaw);
const inflate = promisify(inflateRaw);

/**
 * One chunk of a volume as a cloudsnap stores it:
 *
 *   version (1) | encoding (1: 0 stored, 1 deflate) | nonce (12) | AES-256-GCM ciphertext | tag (16)
 *
 * The chunk's id (HMAC-SHA256 of its plaintext under the volume's id key, hex) is the GCM associated
 * data, so a chunk cannot be passed off as another, and decoding checks the plaintext against the id
 * again. Compression comes before encryption (ciphertext does not compress); a chunk that deflate
 * does not shrink is stored as it is.
 */
const FORMAT_VERSION = 1;
const HEADER_BYTES = 2 + GCM_NONCE_BYTES;
const Encoding = { stored: 0, deflate: 1 } as const;
/** HMAC-SHA256, hex. */
const CHUNK_ID = /^[0-9a-f]{64}$/;
/** Fast settings: chunks are compressed on the upload path, at disk speed. */
const DEFLATE_LEVEL = 1;

export interface EncodedChunk {
  id: string;
  /** What goes into a pack. */
  sealed: Buffer;
}

/** The chunk's id: equal plaintexts under one volume's keys have equal ids (dedupe). */
export function chunkId(plaintext: Buffer, keys: ChunkKeys): string {
  return createHmac("sha256", keys.idKey).update(plaintext).digest("hex");
}

export async function encodeChunk(plaintext: Buffer, keys: ChunkKeys): Promise<EncodedChunk> {
  const id = chunkId(plaintext, keys);
  const compressed = await deflate(plaintext, { level: DEFLATE_LEVEL });
  const [encoding, body] =
    compressed.length < plaintext.length ? [Encoding.deflate, compressed] : [Encoding.stored, plaintext];
  const nonce = randomBytes(GCM_NONCE_BYTES);
  const cipher = createCipheriv("aes-256-gcm", keys.encryptionKey, nonce).setAAD(Buffer.from(id, "hex"));
  const sealed = Buffer.concat([
    Buffer.from([FORMAT_VERSION, encoding]),
    nonce,
    cipher.update(body),
    cipher.final(),
    cipher.getAuthTag(),
  ]);
  return { id, sealed };
}

/**
 * The plaintext of a sealed chunk, checked twice: the GCM tag (a wrong key, a flipped bit, a chunk
 * stored under another's id) and the id of what comes out. Every refusal names the chunk and
 * `where` (the object holding it), never a bare cipher error.
 */
export async function decodeChunk(
  id: string,
  sealed: Buffer,
  keys: ChunkKeys,
  where: string,
): Promise<Buffer> {
  const refuse = (why: string) => new Error(`chunk ${id} in ${where} ${why}`);
  if (!CHUNK_ID.test(id)) throw refuse("has a malformed id (64 hex digits expected)");
  if (sealed.length < HEADER_BYTES + GCM_TAG_BYTES) throw refuse(`is truncated (${sealed.length} bytes)`);
  if (sealed[0] !== FORMAT_VERSION) throw refuse(`has format version ${sealed[0]}, not ${FORMAT_VERSION}`);
  const encoding = sealed[1];
  if (encoding !== Encoding.stored && encoding !== Encoding.deflate)
    throw refuse(`has unknown encoding ${encoding}`);
  const decipher = createDecipheriv("aes-256-gcm", keys.encryptionKey, sealed.subarray(2, HEADER_BYTES))
    .setAAD(Buffer.from(id, "hex"))
    .setAuthTag(sealed.subarray(sealed.length - GCM_TAG_BYTES));
  let body: Buffer;
  try {
    body = Buffer.concat([
      decipher.update(sealed.subarray(HEADER_BYTES, sealed.length - GCM_TAG_BYTES)),
      decipher.final(),
    ]);
  } catch {
    throw refuse("does not decrypt: the key is wrong or the object was altered");
  }
  const plaintext = encoding === Encoding.deflate ? await inflate(body) : body;
  const actual = Buffer.from(chunkId(plaintext, keys), "hex");
  if (!timingSafeEqual(actual, Buffer.from(id, "hex"))) throw refuse("holds other data than its id says");
  return plaintext;
}
