import { CloudsnapBucket } from "../../core/cloud/cloudsnap-bucket.js";
import { readCatalog } from "../../core/cloud/cloudsnap-catalog.js";
import { cloudsnapBucket, cloudsnapS3Client } from "../../core/cloud/s3-client.js";
import type { Cloudsnap } from "../../core/cloudsnaps.js";

/** A volume's cloudsnaps, oldest first, as its catalog in the bucket lists them. */
export type CloudsnapCatalogs = (volumeId: string) => Promise<Cloudsnap[]>;

/**
 * The catalogs in the cluster's bucket, read the way the agents read them (one GET of the volume's
 * catalog, no LIST). The Lambdas only read: every change of a volume's cloudsnaps is an agent's
 * operation, under the volume's lease.
 */
export function bucketCatalogs(env: NodeJS.ProcessEnv = process.env): CloudsnapCatalogs {
  const bucket = new CloudsnapBucket(cloudsnapS3Client(), cloudsnapBucket(env));
  return async (volumeId) => (await readCatalog(bucket, volumeId)).cloudsnaps;
}
