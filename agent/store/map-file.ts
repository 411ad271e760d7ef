import type { FileHandle } from "node:fs/promises";
import { VOLUME_BLOCK_SIZE } from "../../core/model.js";
import { nativeExtents } from "../native/extents.js";
import { BlockStateMap, MAP_PAGE_BYTES, type MapPageImage } from "./block-state-map.js";
import { readFully, writeFully } from "./file-io.js";
import { BLOCKS_PER_PAGE } from "./page-table.js";

/**
 * Layer map file: a 4 KiB header, then the 2-bit block states in 4 KiB pages, page p at
 * MAP_HEADER_BYTES + p * MAP_PAGE_BYTES. The file is sparse: pages never written stay holes and
 * read as "absent". Header (little-endian): magic "STRATAMP", u32 format version, u32 block size,
 * u32 bits per block, u32 blocks per page, u32 layer id; the rest is zero.
 * A whole-page header keeps the pages 4 KiB-aligned, so each page write covers whole fs blocks.
 */
export const MAP_HEADER_BYTES = 4096;
const MAGIC = "STRATAMP";
const FORMAT_VERSION = 1;
const BITS_PER_BLOCK = 2;
/** Pages read per call while loading; large enough to amortise syscalls, small enough to stay cheap. */
const LOAD_BATCH_PAGES = 64;

const EMPTY_PAGE = Buffer.alloc(MAP_PAGE_BYTES);

const Field = {
  magic: 0,
  version: 8,
  blockSize: 12,
  bitsPerBlock: 16,
  blocksPerPage: 20,
  layerId: 24,
} as const;

function mapPageCount(sizeBytes: number): number {
  return Math.ceil(sizeBytes / VOLUME_BLOCK_SIZE / BLOCKS_PER_PAGE);
}

export function mapFileBytes(sizeBytes: number): number {
  return MAP_HEADER_BYTES + mapPageCount(sizeBytes) * MAP_PAGE_BYTES;
}

export function encodeMapHeader(layerId: number): Buffer {
  const header = Buffer.alloc(MAP_HEADER_BYTES);
  header.write(MAGIC, Field.magic, "latin1");
  header.writeUInt32LE(FORMAT_VERSION, Field.version);
  header.writeUInt32LE(VOLUME_BLOCK_SIZE, Field.blockSize);
  header.writeUInt32LE(BITS_PER_BLOCK, Field.bitsPerBlock);
  header.writeUInt32LE(BLOCKS_PER_PAGE, Field.blocksPerPage);
  header.writeUInt32LE(layerId, Field.layerId);
  return header;
}

function checkHeader(path: string, header: Buffer, layerId: number): void {
  const expect = (field: string, actual: number | string, wanted: number | string) => {
    if (actual !== wanted)
      throw new Error(`${path}: corrupt layer map header: ${field} is ${actual}, expected ${wanted}`);
  };
  expect(
    "magic",
    JSON.stringify(header.toString("latin1", Field.magic, Field.magic + MAGIC.length)),
    JSON.stringify(MAGIC),
  );
  expect("format version", header.readUInt32LE(Field.version), FORMAT_VERSION);
  expect("block size", header.readUInt32LE(Field.blockSize), VOLUME_BLOCK_SIZE);
  expect("bits per block", header.readUInt32LE(Field.bitsPerBlock), BITS_PER_BLOCK);
  expect("blocks per page", header.readUInt32LE(Field.blocksPerPage), BLOCKS_PER_PAGE);
  expect("layer id", header.readUInt32LE(Field.layerId), layerId);
}

/** Reads and validates a map file; throws an Error naming the file and the damage. */
export async function loadMapFile(
  path: string,
  file: FileHandle,
  layerId: number,
  sizeBytes: number,
): Promise<BlockStateMap> {
  const { size } = await file.stat();
  if (size < MAP_HEADER_BYTES) {
    throw new Error(
      `${path}: truncated layer map: ${size} bytes, shorter than its ${MAP_HEADER_BYTES}-byte header`,
    );
  }
  const header = Buffer.alloc(MAP_HEADER_BYTES);
  await readFully(file, header, 0);
  checkHeader(path, header, layerId);
  const expectedBytes = mapFileBytes(sizeBytes);
  if (size < expectedBytes) {
    throw new Error(
      `${path}: truncated layer map: ${size} bytes, expected ${expectedBytes} for a ${sizeBytes}-byte volume`,
    );
  }

  const map = new BlockStateMap();
  const pageCount = mapPageCount(sizeBytes);
  const batch = Buffer.alloc(LOAD_BATCH_PAGES * MAP_PAGE_BYTES);
  let pageNumber = 0;
  while (pageNumber < pageCount) {
    // Thin volumes leave most of the map as holes; jump straight to the next written page.
    const dataAt = await nativeExtents.seekData(file.fd, MAP_HEADER_BYTES + pageNumber * MAP_PAGE_BYTES);
    if (dataAt < 0) break;
    pageNumber = Math.floor((dataAt - MAP_HEADER_BYTES) / MAP_PAGE_BYTES);
    if (pageNumber >= pageCount) break;
    const pages = Math.min(LOAD_BATCH_PAGES, pageCount - pageNumber);
    await readFully(
      file,
      batch.subarray(0, pages * MAP_PAGE_BYTES),
      MAP_HEADER_BYTES + pageNumber * MAP_PAGE_BYTES,
    );
    for (let i = 0; i < pages; i++, pageNumber++) {
      const bytes = batch.subarray(i * MAP_PAGE_BYTES, (i + 1) * MAP_PAGE_BYTES);
      if (bytes.equals(EMPTY_PAGE)) continue;
      const badByte = map.loadPage(pageNumber, bytes);
      if (badByte >= 0) {
        const offset = MAP_HEADER_BYTES + pageNumber * MAP_PAGE_BYTES + badByte;
        throw new Error(`${path}: corrupt layer map: invalid block state code at byte offset ${offset}`);
      }
    }
  }
  return map;
}

export async function writeMapPages(file: FileHandle, images: readonly MapPageImage[]): Promise<void> {
  await Promise.all(
    images.map((image) =>
      writeFully(file, image.bytes, MAP_HEADER_BYTES + image.pageNumber * MAP_PAGE_BYTES),
    ),
  );
}
