/**
 * SHA-256 of a whole volume, for the coordinator tests and bench/replication.ts. No vitest here:
 * the bench imports it too.
 */
import { createHash } from "node:crypto";
import { returnIoBuffer } from "../../agent/io-buffers.js";
import { MiB } from "../store/helpers.js";

/** SHA-256 of `sizeBytes` as `read` returns them, in 1 MiB pieces (each buffer returned to the pool). */
export async function checksum(
  sizeBytes: number,
  read: (offset: number, length: number) => Promise<Buffer>,
): Promise<string> {
  const hash = createHash("sha256");
  for (let offset = 0; offset < sizeBytes; offset += MiB) {
    const data = await read(offset, Math.min(MiB, sizeBytes - offset));
    hash.update(data);
    returnIoBuffer(data);
  }
  return hash.digest("hex");
}
