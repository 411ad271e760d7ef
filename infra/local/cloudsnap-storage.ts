import { join } from "node:path";
import {
  CLOUDSNAP_PASSPHRASE_FILE_VARIABLE,
  CLOUDSNAP_PASSPHRASE_VARIABLE,
  cloudsnapPassphrase,
} from "../../core/cloud/cloudsnap-passphrase.js";
import {
  CLOUDSNAP_BUCKET_VARIABLE,
  cloudsnapBucket,
  S3_ENDPOINT_VARIABLE,
} from "../../core/cloud/s3-client.js";
import { conflict } from "../../core/errors.js";
import type { ClusterFile } from "./cluster-file.js";
import { loadOrCreateSecret } from "./cluster-secret.js";
import { ensureBucket, startLocalS3 } from "./s3/local-s3.js";

/** `<dir>/s3`: the local S3 server's objects (and its log), kept across restarts like the state. */
export const S3_DIR = "s3";
/** `<dir>/cloudsnap-passphrase`: generated on the first start; wraps the cloudsnaps' data keys. */
export const CLOUDSNAP_PASSPHRASE_FILE = "cloudsnap-passphrase";

export interface CloudsnapStorageOptions {
  /**
   * An S3 endpoint already running (another local cluster's, so both share one bucket) instead of
   * starting one. It must take local mode's placeholder credentials, as the local cluster's does.
   */
  s3Endpoint?: string;
  /** Default: $STRATA_CLOUDSNAP_BUCKET, else strata-cloudsnaps. Created if missing. */
  bucket?: string;
  /** Another cluster's passphrase file, to restore its cloudsnaps; default: <dir>/cloudsnap-passphrase. */
  passphraseFile?: string;
}

/** Where the cluster's cloudsnaps go, as cluster.json records it (with the endpoint in its endpoints). */
export interface CloudsnapTarget {
  endpoint: string;
  bucket: string;
  /** null: the passphrase is $STRATA_CLOUDSNAP_PASSPHRASE of the supervisor, which the agents inherit. */
  passphraseFile: string | null;
}

export interface CloudsnapStorage extends CloudsnapTarget {
  /** For the terminal: what serves the bucket and where the passphrase is. */
  description: string;
  /** What the agents and the local cloud's functions read to reach the bucket. */
  environment: Record<string, string>;
  /** Stops the S3 server if this cluster started it. */
  close(): Promise<void>;
}

/**
 * The bucket and passphrase of the local cluster's cloudsnaps: the local S3 server (s3rver)
 * started under <dir>/s3, or the endpoint given; the passphrase from the environment, the file
 * given, or <dir>/cloudsnap-passphrase (made on the first start).
 */
export async function startCloudsnapStorage(
  dir: string,
  options: CloudsnapStorageOptions = {},
): Promise<CloudsnapStorage> {
  const bucket = options.bucket ?? cloudsnapBucket();
  const passphraseFile = await passphraseFileFor(dir, options.passphraseFile);
  const passphrase =
    passphraseFile === null
      ? `passphrase from $${CLOUDSNAP_PASSPHRASE_VARIABLE}`
      : `passphrase in ${passphraseFile}`;
  let target: CloudsnapTarget;
  let server: string;
  let close = async () => {};
  if (options.s3Endpoint === undefined) {
    const s3 = await startLocalS3({ dir: join(dir, S3_DIR), bucket });
    target = { endpoint: s3.endpoint, bucket, passphraseFile };
    server = `s3rver at ${s3.endpoint}`;
    close = s3.close;
  } else {
    await ensureBucket(options.s3Endpoint, bucket);
    target = { endpoint: options.s3Endpoint, bucket, passphraseFile };
    server = `S3 at ${options.s3Endpoint} (not started here)`;
  }
  return {
    ...target,
    description: `${server}, bucket ${bucket}, ${passphrase}`,
    environment: cloudsnapEnvironment(target),
    close,
  };
}

/** The variables through which an agent, a function or the CLI finds the bucket and the passphrase. */
export function cloudsnapEnvironment(target: CloudsnapTarget): Record<string, string> {
  return {
    [S3_ENDPOINT_VARIABLE]: target.endpoint,
    [CLOUDSNAP_BUCKET_VARIABLE]: target.bucket,
    ...(target.passphraseFile === null
      ? {}
      : { [CLOUDSNAP_PASSPHRASE_FILE_VARIABLE]: target.passphraseFile }),
  };
}

/** The running cluster's cloudsnap target from its cluster.json; undefined if it names none. */
export function clusterCloudsnapTarget(file: ClusterFile): CloudsnapTarget | undefined {
  const endpoint = file.cloud?.endpoints[S3_ENDPOINT_VARIABLE];
  const cloudsnaps = file.cloud?.cloudsnaps;
  return endpoint === undefined || cloudsnaps === undefined ? undefined : { endpoint, ...cloudsnaps };
}

async function passphraseFileFor(dir: string, given: string | undefined): Promise<string | null> {
  if (process.env[CLOUDSNAP_PASSPHRASE_VARIABLE]) {
    if (given !== undefined)
      throw conflict(
        `both $${CLOUDSNAP_PASSPHRASE_VARIABLE} and a passphrase file (${given}) were given: keep one`,
      );
    return null;
  }
  if (given === undefined) {
    const path = join(dir, CLOUDSNAP_PASSPHRASE_FILE);
    await loadOrCreateSecret(path);
    return path;
  }
  // Read now, so a wrong path is refused at the start rather than at the first cloudsnap.
  try {
    await cloudsnapPassphrase({ [CLOUDSNAP_PASSPHRASE_FILE_VARIABLE]: given });
  } catch (error) {
    throw conflict(`cannot use the cloudsnap passphrase file ${given}: ${(error as Error).message}`);
  }
  return given;
}
