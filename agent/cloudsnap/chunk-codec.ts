import { createHmac, timingSafeEqual } from "node:crypto";
import { promisify } from "node:util";
import { deflateRaw, inflateRaw } from "node:zlib";
import type { VolumeKeys } from "./keys.js";
import { SEAL_OVERHEAD_BYTES, seal, unseal } from "./sealing.js";

const deflate = promisify(deflateRaw);
const inflate = promisify(inflateRaw);

/**
 * One chunk of a volume as a cloudsnap stores it:
 *
 *   version (1) | encoding (1: 0 stored, 1 deflate) | sealed body (sealing.ts)
 *
 * The chunk's id (HMAC-SHA256 of its plaintext under the volume's id key) and the two header bytes
 * are the associated data, so a chunk cannot be passed off as another nor its encoding switched,
 * and decoding checks the plaintext against the id again. Compression comes before encryption
 * (ciphertext does not compress); a chunk that deflate does not shrink is stored as it is, and so is
 * one whose first bytes do not compress (see PROBE_BYTES).
 */
const FORMAT_VERSION = 1;
const HEADER_BYTES = 2;
const Encoding = { stored: 0, deflate: 1 } as const;
/** HMAC-SHA256, hex. */
const CHUNK_ID = /^[0-9a-f]{64}$/;
/** Fast settings: chunks are compressed on the upload path, at disk speed. */
const DEFLATE_LEVEL = 1;
/**
 * Deflating a 1 MiB chunk of incompressible data (encrypted files, media, already compressed
 * pages) costs ~20 ms of CPU for nothing, 4x what hashing and sealing it cost: the first 64 KiB are
 * deflated first, and a chunk whose probe saves less than PROBE_MIN_SAVING is stored without trying
 * the rest. A chunk compressible only past its start is then stored as it is: bytes, never data, lost.
 */
const PROBE_BYTES = 64 * 1024;
const PROBE_MIN_SAVING = 1 / 16;

export interface EncodedChunk {
  id: string;
  /** What goes into a pack. */
  sealed: Buffer;
}

/** The chunk's id: equal plaintexts under one volume's keys have equal ids (dedupe). */
export function chunkId(plaintext: Buffer, keys: VolumeKeys): string {
  return createHmac("sha256", keys.idKey).update(plaintext).digest("hex");
}

export function isChunkId(id: string): boolean {
  return CHUNK_ID.test(id);
}

const associatedData = (id: string) => Buffer.from(id, "hex");

/** Encodes a chunk whose id the caller computed already (it looks the id up before paying for this). */
export async function encodeChunk(id: string, plaintext: Buffer, keys: VolumeKeys): Promise<EncodedChunk> {
  return { id, sealed: await sealStored(plaintext, keys, associatedData(id)) };
}

/**
 * Compresses (when worth it) and seals `plaintext` under `binding`, the associated data that says
 * what the object is; the header follows the binding in the associated data. Deltas (delta-codec.ts)
 * are sealed the same way under a binding of their own.
 */
export async function sealStored(plaintext: Buffer, keys: VolumeKeys, binding: Buffer): Promise<Buffer> {
  const compressed = (await worthDeflating(plaintext))
    ? await deflate(plaintext, { level: DEFLATE_LEVEL })
    : undefined;
  const [encoding, body] =
    compressed !== undefined && compressed.length < plaintext.length
      ? [Encoding.deflate, compressed]
      : [Encoding.stored, plaintext];
  const header = Buffer.from([FORMAT_VERSION, encoding]);
  return Buffer.concat([header, seal(body, keys.encryptionKey, Buffer.concat([binding, header]))]);
}

async function worthDeflating(plaintext: Buffer): Promise<boolean> {
  if (plaintext.length <= PROBE_BYTES) return true;
  const probe = await deflate(plaintext.subarray(0, PROBE_BYTES), { level: DEFLATE_LEVEL });
  return probe.length <= PROBE_BYTES * (1 - PROBE_MIN_SAVING);
}

/**
 * What sealStored sealed under `binding`, or a refusal from `refuse` (which names the object): a
 * truncated object, an unknown header, or a tag that does not verify (a wrong key, a flipped bit,
 * an object stored under another binding, which `undecryptable` may name).
 */
export async function openStored(
  sealed: Buffer,
  keys: VolumeKeys,
  binding: Buffer,
  refuse: (why: string) => Error,
  undecryptable = "the key is wrong or the object was altered",
): Promise<Buffer> {
  if (sealed.length < HEADER_BYTES + SEAL_OVERHEAD_BYTES)
    throw refuse(`is truncated (${sealed.length} bytes)`);
  if (sealed[0] !== FORMAT_VERSION) throw refuse(`has format version ${sealed[0]}, not ${FORMAT_VERSION}`);
  const encoding = sealed[1];
  if (encoding !== Encoding.stored && encoding !== Encoding.deflate)
    throw refuse(`has unknown encoding ${encoding}`);
  const header = sealed.subarray(0, HEADER_BYTES);
  const body = unseal(sealed.subarray(HEADER_BYTES), keys.encryptionKey, Buffer.concat([binding, header]));
  if (body === undefined) throw refuse(`does not decrypt: ${undecryptable}`);
  return encoding === Encoding.deflate ? await inflate(body) : body;
}

/** Whether `plaintext` is what chunk `id` holds (its keyed hash, compared in constant time). */
export function holdsChunk(id: string, plaintext: Buffer, keys: VolumeKeys): boolean {
  return timingSafeEqual(Buffer.from(chunkId(plaintext, keys), "hex"), Buffer.from(id, "hex"));
}

/**
 * The plaintext of a sealed chunk, checked twice: the GCM tag (a wrong key, a flipped bit, a chunk
 * stored under another's id) and the id of what comes out. Every refusal names the chunk and
 * `where` (the object holding it), never a bare cipher error.
 */
export async function decodeChunk(
  id: string,
  sealed: Buffer,
  keys: VolumeKeys,
  where: string,
): Promise<Buffer> {
  const refuse = (why: string) => new Error(`chunk ${id} in ${where} ${why}`);
  if (!isChunkId(id)) throw refuse("has a malformed id (64 hex digits expected)");
  const plaintext = await openStored(sealed, keys, associatedData(id), refuse);
  if (!holdsChunk(id, plaintext, keys)) throw refuse("holds other data than its id says");
  return plaintext;
}
