import { CloudsnapBucket } from "../../core/cloud/cloudsnap-bucket.js";
import { cloudsnapPassphrase } from "../../core/cloud/cloudsnap-passphrase.js";
import { cloudsnapKmsKeyId } from "../../core/cloud/kms-client.js";
import { cloudsnapBucket, cloudsnapS3Client } from "../../core/cloud/s3-client.js";
import { KmsProtector } from "./kms-protector.js";
import { CloudsnapRepository } from "./repository.js";
import { PassphraseProtector, VolumeKeyProtection } from "./volume-key.js";

/**
 * The cloudsnap repository the environment describes (the bucket, the S3 endpoint, the KMS key or
 * the passphrase), made on first use. New data keys are wrapped by the KMS key when
 * STRATA_CLOUDSNAP_KMS_KEY_ID names one (the AWS deployment), else under the passphrase. Stored
 * keys are unwrapped the way their file says, with either: a KMS cluster given the passphrase
 * restores a local cluster's cloudsnaps, and a passphrase cluster whose credentials reach the KMS
 * key restores an AWS one's. The passphrase is read when a key is first needed: an agent without
 * one serves volumes and lists cloudsnaps as ever, and only a cloudsnap or a restore asked of it
 * says what is missing.
 */
export function configuredRepository(env: NodeJS.ProcessEnv = process.env): () => CloudsnapRepository {
  let repository: CloudsnapRepository | undefined;
  return () => {
    if (repository === undefined) {
      const kmsKeyId = cloudsnapKmsKeyId(env);
      repository = new CloudsnapRepository(
        new CloudsnapBucket(cloudsnapS3Client(), cloudsnapBucket(env)),
        new VolumeKeyProtection(kmsKeyId === undefined ? "passphrase" : "kms", {
          passphrase: new PassphraseProtector(() => cloudsnapPassphrase(env)),
          kms: new KmsProtector(kmsKeyId),
        }),
      );
    }
    return repository;
  };
}
