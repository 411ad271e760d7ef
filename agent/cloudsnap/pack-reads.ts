import type { CloudsnapBucket } from "../../core/cloud/cloudsnap-bucket.js";
import { packObject } from "../../core/cloud/cloudsnap-layout.js";
import type { ChunkLocation } from "./manifest.js";

/**
 * One ranged GET of a pack covers neighbouring chunks up to this much: a full cloudsnap's packs
 * come back in a few large reads instead of one request per chunk, while the memory a reader holds
 * stays at its concurrency × this. The 64 KiB over 16 MiB is room for the sealing: a 1 MiB chunk
 * that does not compress is 30 bytes longer sealed, and at 16 MiB exactly only 15 of them fit, so
 * each 32 MiB pack of such chunks took three requests instead of two.
 */
const READ_BYTES = 16 * 1024 * 1024 + 64 * 1024;
/** Unneeded bytes between two needed chunks that are still read in one request rather than two. */
const READ_GAP_BYTES = 256 * 1024;

/** A ranged read of one pack and the chunks it brings. */
export interface PackRead<T extends { location: ChunkLocation }> {
  pack: string;
  offset: number;
  length: number;
  chunks: T[];
}

/** Where a chunk's sealed bytes are, as one string: equal for two references to one stored chunk. */
export const placeOf = (location: ChunkLocation) => `${location.pack}:${location.offset}`;

/** Groups chunks by pack, in pack order, into ranged reads of neighbouring chunks. */
export function planPackReads<T extends { location: ChunkLocation }>(chunks: Iterable<T>): PackRead<T>[] {
  const byPack = new Map<string, T[]>();
  for (const chunk of chunks) {
    const list = byPack.get(chunk.location.pack) ?? [];
    list.push(chunk);
    byPack.set(chunk.location.pack, list);
  }
  const reads: PackRead<T>[] = [];
  for (const [pack, list] of byPack) {
    list.sort((a, b) => a.location.offset - b.location.offset);
    let current: PackRead<T> | undefined;
    for (const chunk of list) {
      const { offset, length } = chunk.location;
      const end = offset + length;
      if (
        current !== undefined &&
        offset - (current.offset + current.length) <= READ_GAP_BYTES &&
        end - current.offset <= READ_BYTES
      ) {
        current.length = end - current.offset;
        current.chunks.push(chunk);
      } else {
        current = { pack, offset, length, chunks: [chunk] };
        reads.push(current);
      }
    }
  }
  return reads;
}

/** Reads one planned range; each chunk comes with its sealed bytes and the object they are in. */
export async function readPack<T extends { location: ChunkLocation }>(
  bucket: CloudsnapBucket,
  volumeId: string,
  read: PackRead<T>,
): Promise<{ chunk: T; sealed: Buffer; where: string }[]> {
  const key = packObject(volumeId, read.pack);
  const bytes = await bucket.get(key, { offset: read.offset, length: read.length });
  return read.chunks.map((chunk) => {
    const start = chunk.location.offset - read.offset;
    return { chunk, sealed: bytes.subarray(start, start + chunk.location.length), where: bucket.where(key) };
  });
}
