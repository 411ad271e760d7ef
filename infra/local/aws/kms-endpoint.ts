import { randomBytes, randomUUID } from "node:crypto";
import { readFile } from "node:fs/promises";
import type { KeyMetadata } from "@aws-sdk/client-kms";
import { z } from "zod";
import { seal, unseal } from "../../../agent/cloudsnap/sealing.js";
import { replaceFileAtomic } from "../../../agent/durable-file.js";
import type { AwsProtocolHandler } from "./http.js";
import { LOCAL_ACCOUNT_ID, localRegion } from "./identity.js";
import { jsonProtocol } from "./json-protocol.js";
import { AwsServiceError } from "./service-error.js";

/**
 * KMS for the local cloud: symmetric keys that really encrypt. Each key has its own random 256-bit
 * master key; a ciphertext is AES-256-GCM under it, and names its key so Decrypt needs no KeyId, as
 * with AWS's symmetric keys. The key's ARN and the encryption context are the associated data, so
 * a ciphertext decrypted with another context, or passed off as another key's, fails with
 * InvalidCiphertextException as it does in AWS.
 *
 *   version (1) | key id (36, ASCII) | nonce (12) | ciphertext | tag (16)
 *
 * Keys live in memory; a local cluster keeps them in a file of its directory (saveTo, load), as it
 * keeps its passphrase, so a restarted cluster still unwraps what its keys wrapped.
 */

interface LocalKey {
  id: string;
  arn: string;
  material: Buffer;
  enabled: boolean;
  description: string;
  created: Date;
}

const CIPHERTEXT_VERSION = 1;
const KEY_ID_BYTES = 36;
const SYMMETRIC_DEFAULT = "SYMMETRIC_DEFAULT";
/** Encrypt takes up to 4 KiB of plaintext; GenerateDataKey makes up to 1024 bytes. */
const MAX_PLAINTEXT_BYTES = 4096;
const MAX_DATA_KEY_BYTES = 1024;
const DATA_KEY_SPECS: Record<string, number> = { AES_256: 32, AES_128: 16 };
const ALIAS_PREFIX = "alias/";
const RESERVED_ALIAS_PREFIX = "alias/aws/";
const ALIAS_NAME = /^[a-zA-Z0-9:/_-]{1,256}$/;

/** What saveTo writes and load reads back: the keys' material included, so the file is the keys. */
const LocalKmsSnapshot = z.object({
  version: z.literal(1),
  region: z.string(),
  keys: z.array(
    z.object({
      id: z.uuid(),
      material: z.base64(),
      enabled: z.boolean(),
      description: z.string(),
      created: z.iso.datetime(),
    }),
  ),
  aliases: z.record(z.string(), z.uuid()),
});

export class LocalKms {
  private readonly keys = new Map<string, LocalKey>();
  /** Alias name (alias/...) → key id. */
  private readonly aliases = new Map<string, string>();
  private readonly arnPrefix: string;

  /** `onChange` is told of every new key, alias and enabled state, to save them. */
  constructor(
    private readonly region = localRegion(),
    private readonly onChange: () => void = () => {},
  ) {
    this.arnPrefix = `arn:aws:kms:${region}:${LOCAL_ACCOUNT_ID}:`;
  }

  /** The keys saved in `path`, or none when there is no such file. */
  static async load(path: string, region = localRegion(), onChange?: () => void): Promise<LocalKms> {
    let text: string;
    try {
      text = await readFile(path, "utf8");
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === "ENOENT") return new LocalKms(region, onChange);
      throw error;
    }
    const parsed = LocalKmsSnapshot.safeParse(JSON.parse(text));
    if (!parsed.success) throw new Error(`${path} is not a local KMS's keys: ${parsed.error.message}`);
    const saved = parsed.data;
    const kms = new LocalKms(saved.region, onChange);
    for (const key of saved.keys)
      kms.keys.set(key.id, {
        id: key.id,
        arn: `${kms.arnPrefix}key/${key.id}`,
        material: Buffer.from(key.material, "base64"),
        enabled: key.enabled,
        description: key.description,
        created: new Date(key.created),
      });
    for (const [alias, id] of Object.entries(saved.aliases)) kms.aliases.set(alias, id);
    return kms;
  }

  /** Writes the keys to `path`, readable by this user only: they unwrap every data key they wrapped. */
  async saveTo(path: string): Promise<void> {
    const snapshot: z.infer<typeof LocalKmsSnapshot> = {
      version: 1,
      region: this.region,
      keys: [...this.keys.values()].map((key) => ({
        id: key.id,
        material: key.material.toString("base64"),
        enabled: key.enabled,
        description: key.description,
        created: key.created.toISOString(),
      })),
      aliases: Object.fromEntries(this.aliases),
    };
    await replaceFileAtomic(path, async (file) => {
      await file.chmod(0o600);
      await file.writeFile(`${JSON.stringify(snapshot, null, 2)}\n`);
    });
  }

  createKey(input: Record<string, unknown>): { KeyMetadata: KeyMetadata } {
    const description = optionalString(input, "Description") ?? "";
    for (const [member, supported] of [
      ["KeyUsage", "ENCRYPT_DECRYPT"],
      ["KeySpec", SYMMETRIC_DEFAULT],
      ["CustomerMasterKeySpec", SYMMETRIC_DEFAULT],
      ["Origin", "AWS_KMS"],
    ] as const) {
      const given = optionalString(input, member);
      if (given !== undefined && given !== supported)
        throw new AwsServiceError(
          "UnsupportedOperationException",
          `${member} ${given} is not supported by the local KMS: only ${supported}`,
        );
    }
    const id = randomUUID();
    const key: LocalKey = {
      id,
      arn: `${this.arnPrefix}key/${id}`,
      material: randomBytes(32),
      enabled: true,
      description,
      created: new Date(),
    };
    this.keys.set(id, key);
    this.onChange();
    return { KeyMetadata: metadata(key) };
  }

  createAlias(input: Record<string, unknown>): Record<string, never> {
    const name = requiredString(input, "AliasName");
    if (!ALIAS_NAME.test(name))
      throw validation(
        "aliasName",
        name,
        "Member must satisfy regular expression pattern: ^[a-zA-Z0-9:/_-]+$ and have length at most 256",
      );
    if (!name.startsWith(ALIAS_PREFIX) || name === ALIAS_PREFIX)
      throw new AwsServiceError("InvalidAliasNameException", `Alias must start with the prefix "alias/"`);
    if (name.startsWith(RESERVED_ALIAS_PREFIX))
      throw new AwsServiceError(
        "InvalidAliasNameException",
        `Alias names that begin with "alias/aws/" are reserved for AWS managed keys`,
      );
    const target = this.keyByIdOrArn(requiredString(input, "TargetKeyId"));
    if (this.aliases.has(name))
      throw new AwsServiceError(
        "AlreadyExistsException",
        `An alias with the name ${this.arnPrefix}${name} already exists`,
      );
    this.aliases.set(name, target.id);
    this.onChange();
    return {};
  }

  describeKey(input: Record<string, unknown>): { KeyMetadata: KeyMetadata } {
    return { KeyMetadata: metadata(this.resolve(requiredString(input, "KeyId"))) };
  }

  disableKey(input: Record<string, unknown>): Record<string, never> {
    return this.setEnabled(input, false);
  }

  enableKey(input: Record<string, unknown>): Record<string, never> {
    return this.setEnabled(input, true);
  }

  private setEnabled(input: Record<string, unknown>, enabled: boolean): Record<string, never> {
    this.keyByIdOrArn(requiredString(input, "KeyId")).enabled = enabled;
    this.onChange();
    return {};
  }

  encrypt(input: Record<string, unknown>) {
    const key = this.usableKey(requiredString(input, "KeyId"));
    checkAlgorithm(input);
    const plaintext = blob(input, "Plaintext");
    if (plaintext.length < 1 || plaintext.length > MAX_PLAINTEXT_BYTES)
      throw validation(
        "plaintext",
        "(redacted)",
        `Member must have length between 1 and ${MAX_PLAINTEXT_BYTES}`,
      );
    return {
      CiphertextBlob: this.seal(key, plaintext, encryptionContext(input)),
      KeyId: key.arn,
      EncryptionAlgorithm: SYMMETRIC_DEFAULT,
    };
  }

  generateDataKey(input: Record<string, unknown>) {
    const key = this.usableKey(requiredString(input, "KeyId"));
    const bytes = dataKeyBytes(input);
    const plaintext = randomBytes(bytes);
    return {
      CiphertextBlob: this.seal(key, plaintext, encryptionContext(input)),
      Plaintext: plaintext.toString("base64"),
      KeyId: key.arn,
    };
  }

  decrypt(input: Record<string, unknown>) {
    checkAlgorithm(input);
    const ciphertext = blob(input, "CiphertextBlob");
    const context = encryptionContext(input);
    if (ciphertext.length <= 1 + KEY_ID_BYTES || ciphertext[0] !== CIPHERTEXT_VERSION)
      throw invalidCiphertext();
    const ownerId = ciphertext.subarray(1, 1 + KEY_ID_BYTES).toString("latin1");
    const owner = this.keys.get(ownerId);
    if (owner === undefined)
      throw new AwsServiceError("NotFoundException", `Key '${this.arnPrefix}key/${ownerId}' does not exist`);
    const asked = optionalString(input, "KeyId");
    if (asked !== undefined && this.resolve(asked).id !== owner.id)
      throw new AwsServiceError(
        "IncorrectKeyException",
        "The key ID in the request does not identify a CMK that can perform this operation.",
      );
    if (!owner.enabled) throw disabled(owner);
    const plaintext = unseal(ciphertext.subarray(1 + KEY_ID_BYTES), owner.material, aad(owner, context));
    if (plaintext === undefined) throw invalidCiphertext();
    return {
      KeyId: owner.arn,
      Plaintext: plaintext.toString("base64"),
      EncryptionAlgorithm: SYMMETRIC_DEFAULT,
    };
  }

  private seal(key: LocalKey, plaintext: Buffer, context: Record<string, string>): string {
    return Buffer.concat([
      Buffer.from([CIPHERTEXT_VERSION]),
      Buffer.from(key.id, "latin1"),
      seal(plaintext, key.material, aad(key, context)),
    ]).toString("base64");
  }

  private usableKey(keyId: string): LocalKey {
    const key = this.resolve(keyId);
    if (!key.enabled) throw disabled(key);
    return key;
  }

  /** A key by its id, its ARN, an alias name or an alias ARN, as the cryptographic operations take it. */
  private resolve(keyId: string): LocalKey {
    const local = keyId.startsWith(this.arnPrefix) ? keyId.slice(this.arnPrefix.length) : keyId;
    if (!local.startsWith(ALIAS_PREFIX)) return this.keyByIdOrArn(keyId);
    const target = this.aliases.get(local);
    if (target === undefined)
      throw new AwsServiceError("NotFoundException", `Alias ${this.arnPrefix}${local} is not found.`);
    return this.keys.get(target)!;
  }

  /** A key by its id or ARN only, as DisableKey, EnableKey and CreateAlias's target take it. */
  private keyByIdOrArn(keyId: string): LocalKey {
    const id = keyId.startsWith(`${this.arnPrefix}key/`)
      ? keyId.slice(`${this.arnPrefix}key/`.length)
      : keyId;
    const key = this.keys.get(id);
    if (key !== undefined) return key;
    if (keyId.startsWith("arn:") || /^[0-9a-f-]{36}$/.test(keyId))
      throw new AwsServiceError("NotFoundException", `Key '${this.arnPrefix}key/${id}' does not exist`);
    throw new AwsServiceError("NotFoundException", `Invalid keyId ${keyId}`);
  }
}

/**
 * KMS on the wire: AWS JSON 1.1 with `X-Amz-Target: TrentService.<Operation>`; blobs travel as
 * base64 strings, and refusals carry KMS's exception names.
 */
export function kmsProtocol(kms: LocalKms): AwsProtocolHandler {
  return jsonProtocol({
    version: "1.1",
    targetPrefix: "TrentService",
    operations: {
      CreateKey: async (input) => kms.createKey(input),
      CreateAlias: async (input) => kms.createAlias(input),
      DescribeKey: async (input) => kms.describeKey(input),
      DisableKey: async (input) => kms.disableKey(input),
      EnableKey: async (input) => kms.enableKey(input),
      Encrypt: async (input) => kms.encrypt(input),
      Decrypt: async (input) => kms.decrypt(input),
      GenerateDataKey: async (input) => kms.generateDataKey(input),
    },
  });
}

function metadata(key: LocalKey): KeyMetadata {
  return {
    AWSAccountId: LOCAL_ACCOUNT_ID,
    KeyId: key.id,
    Arn: key.arn,
    CreationDate: key.created,
    Enabled: key.enabled,
    Description: key.description,
    KeyUsage: "ENCRYPT_DECRYPT",
    KeyState: key.enabled ? "Enabled" : "Disabled",
    Origin: "AWS_KMS",
    KeyManager: "CUSTOMER",
    CustomerMasterKeySpec: SYMMETRIC_DEFAULT,
    KeySpec: SYMMETRIC_DEFAULT,
    EncryptionAlgorithms: [SYMMETRIC_DEFAULT],
    MultiRegion: false,
  };
}

/**
 * What a ciphertext is bound to: its key's ARN and the encryption context, with the context's
 * pairs sorted by name (KMS treats the context as a set: the order it was sent in does not matter).
 */
function aad(key: LocalKey, context: Record<string, string>): Buffer {
  const pairs = Object.entries(context).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return Buffer.from(JSON.stringify([key.arn, pairs]));
}

function encryptionContext(input: Record<string, unknown>): Record<string, string> {
  const context = input["EncryptionContext"];
  if (context === undefined) return {};
  if (
    typeof context !== "object" ||
    context === null ||
    Array.isArray(context) ||
    !Object.values(context).every((value) => typeof value === "string")
  )
    throw new AwsServiceError("SerializationException", "EncryptionContext must map strings to strings");
  return context as Record<string, string>;
}

function dataKeyBytes(input: Record<string, unknown>): number {
  const { NumberOfBytes, KeySpec } = input;
  if ((NumberOfBytes === undefined) === (KeySpec === undefined))
    throw new AwsServiceError("ValidationException", "Please specify either number of bytes or key spec.");
  if (KeySpec !== undefined) {
    const bytes = typeof KeySpec === "string" ? DATA_KEY_SPECS[KeySpec] : undefined;
    if (bytes === undefined)
      throw validation("keySpec", String(KeySpec), "Member must satisfy enum value set: [AES_256, AES_128]");
    return bytes;
  }
  if (!Number.isInteger(NumberOfBytes) || (NumberOfBytes as number) < 1)
    throw validation(
      "numberOfBytes",
      String(NumberOfBytes),
      "Member must have value greater than or equal to 1",
    );
  if ((NumberOfBytes as number) > MAX_DATA_KEY_BYTES)
    throw validation(
      "numberOfBytes",
      String(NumberOfBytes),
      `Member must have value less than or equal to ${MAX_DATA_KEY_BYTES}`,
    );
  return NumberOfBytes as number;
}

function checkAlgorithm(input: Record<string, unknown>): void {
  const algorithm = optionalString(input, "EncryptionAlgorithm");
  if (algorithm !== undefined && algorithm !== SYMMETRIC_DEFAULT)
    throw new AwsServiceError(
      "InvalidKeyUsageException",
      `The encryption algorithm ${algorithm} is not supported by a symmetric key`,
    );
}

function blob(input: Record<string, unknown>, member: string): Buffer {
  const value = input[member];
  if (value === undefined) throw validation(lowerFirst(member), null, "Member must not be null");
  if (typeof value !== "string" || !/^[A-Za-z0-9+/]*={0,2}$/.test(value))
    throw new AwsServiceError("SerializationException", `${member} must be a base64-encoded blob`);
  return Buffer.from(value, "base64");
}

function requiredString(input: Record<string, unknown>, member: string): string {
  const value = optionalString(input, member);
  if (value === undefined || value === "")
    throw validation(lowerFirst(member), null, "Member must not be null");
  return value;
}

function optionalString(input: Record<string, unknown>, member: string): string | undefined {
  const value = input[member];
  if (value === undefined) return undefined;
  if (typeof value !== "string")
    throw new AwsServiceError("SerializationException", `${member} must be a string`);
  return value;
}

/** KMS's validation message: what was wrong with which member, in its fixed form. */
function validation(member: string, value: string | null, constraint: string): AwsServiceError {
  return new AwsServiceError(
    "ValidationException",
    `1 validation error detected: Value ${value === null ? "null" : `'${value}'`} at '${member}' failed to satisfy constraint: ${constraint}`,
  );
}

const lowerFirst = (name: string) => name.charAt(0).toLowerCase() + name.slice(1);

const disabled = (key: LocalKey) => new AwsServiceError("DisabledException", `${key.arn} is disabled.`);

/** Like AWS, it does not say which part failed: the bytes, the key or the encryption context. */
const invalidCiphertext = () =>
  new AwsServiceError(
    "InvalidCiphertextException",
    "The ciphertext is invalid, or does not match its key and encryption context.",
  );
