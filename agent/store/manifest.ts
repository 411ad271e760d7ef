import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { z } from "zod";
import { VOLUME_BLOCK_SIZE } from "../../core/model.js";
import { writeJsonAtomic } from "../durable-file.js";
import { MAX_CHAIN_POSITION } from "./layer-index.js";

export const MANIFEST_FILE = "replica.json";
const FORMAT_VERSION = 1;

const SnapshotRecord = z.object({
  id: z.uuid(),
  name: z.string(),
  createdAt: z.iso.datetime(),
});
export type SnapshotRecord = z.infer<typeof SnapshotRecord>;

const LayerRecord = z.object({
  id: z.number().int().positive(),
  /** null only for the last layer, the writable head. */
  snapshot: SnapshotRecord.nullable(),
});
export type LayerRecord = z.infer<typeof LayerRecord>;

/**
 * replica.json: who this replica is and its layer chain, oldest first. Rewritten atomically
 * (writeJsonAtomic) at each chain change; that rename is the commit point of snapshot, merge,
 * revert and resize. Layer files not listed here are leftovers of an interrupted change.
 */
const Manifest = z
  .object({
    formatVersion: z.literal(FORMAT_VERSION),
    volumeId: z.string().min(1),
    replicaId: z.string().min(1),
    sizeBytes: z
      .number()
      .int()
      .positive()
      .refine((n) => n % VOLUME_BLOCK_SIZE === 0, "must be a multiple of the block size"),
    blockSize: z.literal(VOLUME_BLOCK_SIZE),
    epoch: z.number().int().nonnegative(),
    layers: z.array(LayerRecord).min(1).max(MAX_CHAIN_POSITION),
    nextLayerId: z.number().int().positive(),
  })
  .superRefine((manifest, context) => {
    const ids = new Set<number>();
    manifest.layers.forEach((layer, i) => {
      const isHead = i === manifest.layers.length - 1;
      if (isHead !== (layer.snapshot === null)) {
        context.addIssue({
          code: "custom",
          path: ["layers", i, "snapshot"],
          message: isHead
            ? "the head layer cannot be a snapshot"
            : "every layer below the head must be a snapshot",
        });
      }
      if (ids.has(layer.id) || layer.id >= manifest.nextLayerId) {
        context.addIssue({
          code: "custom",
          path: ["layers", i, "id"],
          message: "layer ids must be unique and below nextLayerId",
        });
      }
      ids.add(layer.id);
    });
  });
export type Manifest = z.infer<typeof Manifest>;

export function newManifest(identity: {
  volumeId: string;
  replicaId: string;
  sizeBytes: number;
  epoch: number;
}): Manifest {
  return Manifest.parse({
    formatVersion: FORMAT_VERSION,
    ...identity,
    blockSize: VOLUME_BLOCK_SIZE,
    layers: [{ id: 1, snapshot: null }],
    nextLayerId: 2,
  });
}

/** Reads and validates replica.json; throws an Error naming the file and what is wrong with it. */
export async function readManifest(dir: string): Promise<Manifest> {
  const path = join(dir, MANIFEST_FILE);
  let text: string;
  try {
    text = await readFile(path, "utf8");
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT")
      throw new Error(`${path}: no replica here (file missing)`);
    throw error;
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (error) {
    throw new Error(`${path}: corrupt replica manifest: not valid JSON (${(error as Error).message})`);
  }
  const parsed = Manifest.safeParse(json);
  if (!parsed.success) {
    throw new Error(
      `${path}: corrupt replica manifest: ${z.prettifyError(parsed.error).replaceAll("\n", "; ")}`,
    );
  }
  return parsed.data;
}

export function writeManifest(dir: string, manifest: Manifest): Promise<void> {
  return writeJsonAtomic(join(dir, MANIFEST_FILE), manifest);
}
