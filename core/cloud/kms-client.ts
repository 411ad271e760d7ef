import { KMSClient } from "@aws-sdk/client-kms";
import { invalid } from "../errors.js";

/**
 * The KMS side of cloudsnaps: the key that wraps each volume's data key in AWS. Like every other SDK
 * client of Strata, a KMS client is given no endpoint: the SDK reads `AWS_ENDPOINT_URL_KMS`, else
 * `AWS_ENDPOINT_URL`, so the environment alone says whether it is AWS's KMS or the local cloud's.
 * Transient failures (throttling, KMSInternalException, a dropped connection) are retried by the
 * SDK's standard retry strategy, with its backoff and jitter.
 */

/** The KMS key new data keys are wrapped under: a key id, key ARN, alias name or alias ARN. */
export const CLOUDSNAP_KMS_KEY_VARIABLE = "STRATA_CLOUDSNAP_KMS_KEY_ID";

const KEY_ID = /^(?:[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}|mrk-[0-9a-f]{32})$/;
const ALIAS_NAME = /^alias\/[A-Za-z0-9/_-]{1,250}$/;
const KMS_ARN = /^arn:aws[a-z-]*:kms:([a-z0-9-]+):(\d{12}):(key\/.+|alias\/.+)$/;

/** The configured KMS key, or undefined when cloudsnap keys are protected by a passphrase instead. */
export function cloudsnapKmsKeyId(env: NodeJS.ProcessEnv = process.env): string | undefined {
  const configured = env[CLOUDSNAP_KMS_KEY_VARIABLE]?.trim();
  return configured === undefined || configured === "" ? undefined : configured;
}

/** Refuses, in one sentence, a value KMS would not take as a key: before any data key is made. */
export function checkKmsKeyId(keyId: string): string {
  const arn = KMS_ARN.exec(keyId);
  const resource = arn?.[3];
  const valid =
    resource === undefined
      ? KEY_ID.test(keyId) || ALIAS_NAME.test(keyId)
      : KEY_ID.test(resource.slice("key/".length)) || ALIAS_NAME.test(resource);
  if (!valid)
    throw invalid(
      `${CLOUDSNAP_KMS_KEY_VARIABLE} is "${keyId}": expected a KMS key id, a key ARN, an alias name (alias/...) or an alias ARN`,
    );
  return keyId;
}

/** The region an ARN names: a key in another region is asked of KMS there (a restore elsewhere). */
export function kmsKeyRegion(keyId: string): string | undefined {
  return KMS_ARN.exec(keyId)?.[1];
}

const clients = new Map<string, KMSClient>();

/**
 * This process's KMS client for a region (the environment's when none is named), made on first
 * use and kept so its connections are reused.
 */
export function cloudsnapKmsClient(region?: string): KMSClient {
  const cacheKey = region ?? "";
  let client = clients.get(cacheKey);
  if (client === undefined) {
    client = new KMSClient(region === undefined ? {} : { region });
    clients.set(cacheKey, client);
  }
  return client;
}
