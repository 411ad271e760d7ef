import { z } from "zod";
import { Cloudsnap } from "../cloudsnaps.js";
import type { CloudsnapBucket } from "./cloudsnap-bucket.js";
import { catalogObject } from "./cloudsnap-layout.js";

/** What the catalog says of one cloudsnap: core/cloudsnaps.ts, as the API shows it. */
export const CatalogEntry = Cloudsnap;
export type CatalogEntry = Cloudsnap;

/**
 * A volume's cloudsnaps, oldest first. Written whole and last: after every pack and the manifest
 * of a new cloudsnap are in the bucket, so it never names a cloudsnap that is not all there. Only
 * the holder of the volume's cloudsnap lease (the state table) writes it, as S3-compatible servers
 * do not all honour conditional writes.
 */
export const Catalog = z.strictObject({
  format: z.literal(1),
  volumeId: z.string(),
  cloudsnaps: z.array(CatalogEntry),
});
export type Catalog = z.infer<typeof Catalog>;

export const emptyCatalog = (volumeId: string): Catalog => ({ format: 1, volumeId, cloudsnaps: [] });

/** The volume's catalog; an empty one when the volume has no cloudsnap yet. */
export async function readCatalog(bucket: CloudsnapBucket, volumeId: string): Promise<Catalog> {
  const key = catalogObject(volumeId);
  const body = await bucket.getIfExists(key);
  if (body === undefined) return emptyCatalog(volumeId);
  let json: unknown;
  try {
    json = JSON.parse(body.toString("utf8"));
  } catch {
    throw new Error(`catalog ${bucket.where(key)} is not JSON`);
  }
  const parsed = Catalog.safeParse(json);
  if (!parsed.success || parsed.data.volumeId !== volumeId) {
    throw new Error(
      `catalog ${bucket.where(key)} is malformed: ${parsed.error?.issues[0]?.message ?? `it is volume ${parsed.data?.volumeId}'s`}`,
    );
  }
  return parsed.data;
}

export async function writeCatalog(bucket: CloudsnapBucket, catalog: Catalog): Promise<void> {
  await bucket.put(
    catalogObject(catalog.volumeId),
    Buffer.from(`${JSON.stringify(catalog, null, 1)}\n`),
    "application/json",
  );
}
