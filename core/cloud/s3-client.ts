import { S3Client, type S3ClientConfig } from "@aws-sdk/client-s3";
import { textFromEnv } from "../env-settings.js";

/**
 * The S3 side of cloudsnaps, for AWS and the local cluster alike. Like every other SDK client of
 * Strata, the S3 client is given no endpoint: the SDK itself reads `AWS_ENDPOINT_URL_S3`, else
 * `AWS_ENDPOINT_URL` (and the shared config file's `endpoint_url`), so only the environment says
 * whether the bucket is in AWS or on the local S3-compatible server.
 */

/** The variable the SDK's S3 client takes its endpoint from (its service id is "S3"). */
export const S3_ENDPOINT_VARIABLE = "AWS_ENDPOINT_URL_S3";
/** The SDK's endpoint for every service without a variable of its own. */
const ANY_ENDPOINT_VARIABLE = "AWS_ENDPOINT_URL";
/** Set to true, the SDK ignores both endpoint variables. */
const IGNORE_ENDPOINTS_VARIABLE = "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS";

/** The bucket cloudsnaps go to: the AWS stack sets it; a local cluster passes its own to its agents. */
export const CLOUDSNAP_BUCKET_VARIABLE = "STRATA_CLOUDSNAP_BUCKET";
/** The local cluster's bucket unless told otherwise. */
export const LOCAL_CLOUDSNAP_BUCKET = "strata-cloudsnaps";

export function cloudsnapBucket(env: NodeJS.ProcessEnv = process.env): string {
  return textFromEnv(CLOUDSNAP_BUCKET_VARIABLE, LOCAL_CLOUDSNAP_BUCKET, env);
}

/**
 * S3's rules for a bucket name that works with path- and virtual-host-style addressing alike:
 * 3 to 63 lower-case letters, digits, dots and hyphens, starting and ending with a letter or digit.
 */
export function isBucketName(name: string): boolean {
  return /^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/.test(name) && !name.includes("..");
}

/**
 * True when the environment sends S3 requests somewhere other than AWS's own endpoints. An
 * endpoint set only in the shared config file (`endpoint_url`) is not seen here: use the variable.
 */
export function hasS3EndpointOverride(env: NodeJS.ProcessEnv = process.env): boolean {
  if (env[IGNORE_ENDPOINTS_VARIABLE]?.toLowerCase() === "true") return false;
  return Boolean(env[S3_ENDPOINT_VARIABLE] || env[ANY_ENDPOINT_VARIABLE]);
}

/**
 * The client settings cloudsnaps need beyond what the environment gives.
 *
 * Path-style addressing (`http://host:port/bucket/key`) whenever the endpoint is overridden: a
 * local or self-hosted server has no DNS for `bucket.host`, which virtual-host style needs. AWS
 * itself keeps virtual-host style, the only one new buckets there are promised.
 *
 * Checksums only where an operation requires them: by default the SDK adds a CRC to every upload
 * by sending it `Content-Encoding: aws-chunked` with the checksum in a trailer
 * (`x-amz-content-sha256: STREAMING-UNSIGNED-PAYLOAD-TRAILER`). s3rver accepts that header but
 * does not decode the framing, so it stores the chunk sizes and the trailer as part of the object
 * (an object read back starts with "78\r\n"). Cloudsnaps lose nothing by it: every chunk carries
 * its own AES-GCM tag and is verified on restore, and TLS guards the transfer in AWS.
 */
export function cloudsnapS3Config(env: NodeJS.ProcessEnv = process.env): S3ClientConfig {
  return {
    forcePathStyle: hasS3EndpointOverride(env),
    requestChecksumCalculation: "WHEN_REQUIRED",
    responseChecksumValidation: "WHEN_REQUIRED",
  };
}

let shared: S3Client | undefined;

/**
 * This process's cloudsnap client, made on first use and kept (its connections are reused), set up
 * from process.env as it is then. `fresh` makes a new one the caller owns (and destroys).
 */
export function cloudsnapS3Client(options: { fresh?: boolean } = {}): S3Client {
  if (options.fresh === true) return new S3Client(cloudsnapS3Config());
  shared ??= new S3Client(cloudsnapS3Config());
  return shared;
}
