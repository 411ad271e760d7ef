import { CloudsnapBucket } from "../../core/cloud/cloudsnap-bucket.js";
import { cloudsnapPassphrase } from "../../core/cloud/cloudsnap-passphrase.js";
import { cloudsnapBucket, cloudsnapS3Client } from "../../core/cloud/s3-client.js";
import { CloudsnapRepository } from "./repository.js";
import { PassphraseProtector } from "./volume-key.js";

/**
 * The cloudsnap repository the environment describes (the bucket, the S3 endpoint, the
 * passphrase), made on first use. The passphrase is read when a key is first needed: an agent
 * without one serves volumes and lists cloudsnaps as ever, and only a cloudsnap or a restore asked
 * of it says what is missing.
 */
export function configuredRepository(env: NodeJS.ProcessEnv = process.env): () => CloudsnapRepository {
  let repository: CloudsnapRepository | undefined;
  return () => {
    repository ??= new CloudsnapRepository(
      new CloudsnapBucket(cloudsnapS3Client(), cloudsnapBucket(env)),
      new PassphraseProtector(() => cloudsnapPassphrase(env)),
    );
    return repository;
  };
}
