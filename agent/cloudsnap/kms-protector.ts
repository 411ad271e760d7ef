import { DecryptCommand, EncryptCommand, type KMSClient, KMSServiceException } from "@aws-sdk/client-kms";
import {
  CLOUDSNAP_KMS_KEY_VARIABLE,
  checkKmsKeyId,
  cloudsnapKmsClient,
  kmsKeyRegion,
} from "../../core/cloud/kms-client.js";
import { conflict, StrataError } from "../../core/errors.js";
import { DATA_KEY_BYTES } from "./keys.js";
import type { KeyFile, KeyProtector, ProtectionOf } from "./volume-key.js";

/**
 * The encryption context every data key is wrapped with. KMS binds the ciphertext to it (Decrypt
 * must present the same pairs), so a key file copied into another volume's place does not unwrap
 * there; and the agent role's IAM policy requires these pairs, so the role cannot use the key for
 * anything but cloudsnap data keys. Both names and the purpose are part of the stored format.
 */
export const KMS_CONTEXT_VOLUME = "strata:volume";
export const KMS_CONTEXT_PURPOSE = "strata:purpose";
export const KMS_DATA_KEY_PURPOSE = "cloudsnap-data-key";

export function dataKeyContext(volumeId: string): Record<string, string> {
  return { [KMS_CONTEXT_VOLUME]: volumeId, [KMS_CONTEXT_PURPOSE]: KMS_DATA_KEY_PURPOSE };
}

/**
 * Wraps data keys with KMS Encrypt, unwraps them with Decrypt. The data key itself is made here, as
 * for every other protection (one path from the node's CSPRNG to the key file, and the role needs
 * kms:Encrypt rather than kms:GenerateDataKey); KMS only wraps its 32 bytes.
 *
 * Without a key id it only unwraps: the key file names its key, so a cluster that protects its own
 * keys with a passphrase still restores KMS-protected cloudsnaps when its credentials reach the key.
 */
export class KmsProtector implements KeyProtector<"kms"> {
  constructor(
    private readonly keyId?: string,
    /** The client for a region (the environment's when undefined); the process's shared ones by default. */
    private readonly clientFor: (region?: string) => KMSClient = cloudsnapKmsClient,
  ) {}

  async protect(dataKey: Buffer, file: KeyFile): Promise<ProtectionOf<"kms">> {
    if (this.keyId === undefined)
      throw conflict(
        `no KMS key to wrap the data key of ${file.where} with: set ${CLOUDSNAP_KMS_KEY_VARIABLE}`,
      );
    const keyId = checkKmsKeyId(this.keyId);
    const answer = await this.ask("wrap the data key of", keyId, file, (client) =>
      client.send(
        new EncryptCommand({
          KeyId: keyId,
          Plaintext: dataKey,
          EncryptionContext: dataKeyContext(file.volumeId),
        }),
      ),
    );
    if (answer.KeyId === undefined || answer.CiphertextBlob === undefined)
      throw new Error(
        `KMS answered Encrypt for ${file.where} with the KMS key ${keyId} without a ciphertext`,
      );
    return {
      kind: "kms",
      keyId: answer.KeyId,
      ciphertext: Buffer.from(answer.CiphertextBlob).toString("base64"),
    };
  }

  async recover(protection: ProtectionOf<"kms">, file: KeyFile): Promise<Buffer> {
    const { keyId } = protection;
    const answer = await this.ask("unwrap", keyId, file, (client) =>
      client.send(
        new DecryptCommand({
          // Named, not left to the ciphertext: KMS then refuses a file that claims another key.
          KeyId: keyId,
          CiphertextBlob: Buffer.from(protection.ciphertext, "base64"),
          EncryptionContext: dataKeyContext(file.volumeId),
        }),
      ),
    );
    if (answer.Plaintext?.length !== DATA_KEY_BYTES)
      throw new Error(
        `${file.where} unwrapped under the KMS key ${keyId} to ${answer.Plaintext?.length ?? 0} bytes, not a ${DATA_KEY_BYTES}-byte data key`,
      );
    return Buffer.from(answer.Plaintext);
  }

  private async ask<T>(
    doing: string,
    keyId: string,
    file: KeyFile,
    call: (client: KMSClient) => Promise<T>,
  ): Promise<T> {
    try {
      return await call(this.clientFor(kmsKeyRegion(keyId)));
    } catch (error) {
      throw kmsFailure(error, `${doing} ${file.where}`, keyId, file);
    }
  }
}

/** What KMS's refusal means for the key file, in one sentence naming the file and the key. */
function kmsFailure(error: unknown, doing: string, keyId: string, file: KeyFile): StrataError {
  const key = `the KMS key ${keyId}`;
  if (!(error instanceof KMSServiceException)) {
    // No answer from KMS at all: no route, no credentials, a connection dropped on every attempt.
    return new StrataError(
      "UNAVAILABLE",
      `KMS could not be asked to ${doing} with ${key}: ${(error as Error).message}`,
    );
  }
  const said = `${error.name}: ${error.message}`;
  switch (error.name) {
    case "AccessDeniedException":
      return conflict(
        `KMS denied access to ${key}, needed to ${doing}: the role needs kms:Encrypt and kms:Decrypt on it with the encryption context of volume ${file.volumeId} (${said})`,
      );
    case "NotFoundException":
      return conflict(`${key}, needed to ${doing}, does not exist in this account and region (${said})`);
    case "DisabledException":
      return conflict(`${key} is disabled, so KMS will not ${doing}: enable the key and try again`);
    case "KMSInvalidStateException":
      return conflict(`${key} cannot be used to ${doing} in its current state (${said})`);
    case "InvalidCiphertextException":
      return conflict(
        `${file.where} does not unwrap under ${key}: its ciphertext is damaged, or it was written for another volume than ${file.volumeId}`,
      );
    case "IncorrectKeyException":
      return conflict(`${file.where} was not wrapped by ${key}, the key it names: the file has been altered`);
  }
  // Throttling and KMS's own faults reach here only once the SDK's retries are spent.
  const attempts = error.$metadata.attempts ?? 1;
  return error.$fault === "server" || error.$retryable !== undefined || /Throttl/.test(error.name)
    ? new StrataError("UNAVAILABLE", `KMS did not ${doing} with ${key} in ${attempts} attempts (${said})`)
    : conflict(`KMS refused to ${doing} with ${key} (${said})`);
}
