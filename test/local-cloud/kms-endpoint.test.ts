import { mkdtemp, readFile, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  CreateAliasCommand,
  CreateKeyCommand,
  DecryptCommand,
  DescribeKeyCommand,
  DisableKeyCommand,
  EnableKeyCommand,
  EncryptCommand,
  GenerateDataKeyCommand,
  KMSClient,
} from "@aws-sdk/client-kms";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type AwsEndpoint, startAwsEndpoint } from "../../infra/local/aws/http.js";
import { LOCAL_ACCOUNT_ID } from "../../infra/local/aws/identity.js";
import { kmsProtocol, LocalKms } from "../../infra/local/aws/kms-endpoint.js";
import { CLIENT_CONFIG, refusal } from "./aws-harness.js";

let endpoint: AwsEndpoint;
let kms: KMSClient;

beforeAll(async () => {
  endpoint = await startAwsEndpoint(kmsProtocol(new LocalKms("local")));
  process.env.AWS_ENDPOINT_URL_KMS = endpoint.url;
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED = "true";
  // Given no endpoint: the variable is the only route, as for the agent's client.
  kms = new KMSClient(CLIENT_CONFIG);
});

afterAll(async () => {
  kms?.destroy();
  await endpoint?.close();
});

const context = { "strata:volume": "vol-1", "strata:purpose": "cloudsnap-data-key" };
const plaintext = Buffer.from("a 32-byte data key, or near it..");

async function newKey(description = "cloudsnap keys") {
  const { KeyMetadata } = await kms.send(new CreateKeyCommand({ Description: description }));
  return KeyMetadata!;
}

async function encrypt(KeyId: string, EncryptionContext: Record<string, string> = context) {
  return kms.send(new EncryptCommand({ KeyId, Plaintext: plaintext, EncryptionContext }));
}

describe("keys and aliases", () => {
  it("creates a symmetric key and describes it by id, ARN, alias name and alias ARN", async () => {
    const key = await newKey();
    expect(key).toMatchObject({
      AWSAccountId: LOCAL_ACCOUNT_ID,
      Arn: `arn:aws:kms:local:${LOCAL_ACCOUNT_ID}:key/${key.KeyId}`,
      Description: "cloudsnap keys",
      Enabled: true,
      KeyState: "Enabled",
      KeyUsage: "ENCRYPT_DECRYPT",
      KeySpec: "SYMMETRIC_DEFAULT",
      KeyManager: "CUSTOMER",
      EncryptionAlgorithms: ["SYMMETRIC_DEFAULT"],
    });
    expect(key.CreationDate).toBeInstanceOf(Date);
    await kms.send(new CreateAliasCommand({ AliasName: "alias/described", TargetKeyId: key.KeyId }));
    for (const KeyId of [
      key.KeyId,
      key.Arn,
      "alias/described",
      `arn:aws:kms:local:${LOCAL_ACCOUNT_ID}:alias/described`,
    ]) {
      const { KeyMetadata } = await kms.send(new DescribeKeyCommand({ KeyId }));
      expect(KeyMetadata?.Arn).toBe(key.Arn);
    }
  });

  it("refuses unknown keys and aliases, bad alias names and taken ones with KMS's exceptions", async () => {
    const key = await newKey();
    const unknownId = "0b5c2f7e-0000-4000-8000-000000000000";
    const unknown = await refusal(kms.send(new DescribeKeyCommand({ KeyId: unknownId })));
    expect(unknown.name).toBe("NotFoundException");
    expect(unknown.message).toContain(unknownId);
    expect((await refusal(kms.send(new DescribeKeyCommand({ KeyId: "alias/none" })))).name).toBe(
      "NotFoundException",
    );
    expect((await refusal(kms.send(new DescribeKeyCommand({ KeyId: "garbage" })))).name).toBe(
      "NotFoundException",
    );

    await kms.send(new CreateAliasCommand({ AliasName: "alias/taken", TargetKeyId: key.Arn }));
    const taken = await refusal(
      kms.send(new CreateAliasCommand({ AliasName: "alias/taken", TargetKeyId: key.KeyId })),
    );
    expect(taken.name).toBe("AlreadyExistsException");
    for (const AliasName of ["no-prefix", "alias/aws/reserved"])
      expect(
        (await refusal(kms.send(new CreateAliasCommand({ AliasName, TargetKeyId: key.KeyId })))).name,
      ).toBe("InvalidAliasNameException");
    expect(
      (
        await refusal(
          kms.send(new CreateAliasCommand({ AliasName: "alias/bad name", TargetKeyId: key.KeyId })),
        )
      ).name,
    ).toBe("ValidationException");
    const noTarget = await refusal(
      kms.send(new CreateAliasCommand({ AliasName: "alias/orphan", TargetKeyId: unknownId })),
    );
    expect(noTarget.name).toBe("NotFoundException");
    const asymmetric = await refusal(kms.send(new CreateKeyCommand({ KeySpec: "RSA_2048" })));
    expect(asymmetric.name).toBe("UnsupportedOperationException");
  });
});

describe("Encrypt and Decrypt", () => {
  it("round-trips under the key's ARN, needing no KeyId to decrypt, with a fresh ciphertext each time", async () => {
    const key = await newKey();
    await kms.send(new CreateAliasCommand({ AliasName: "alias/round-trip", TargetKeyId: key.KeyId }));
    const first = await encrypt("alias/round-trip");
    const second = await encrypt(key.KeyId!);
    expect(first.KeyId).toBe(key.Arn);
    expect(first.EncryptionAlgorithm).toBe("SYMMETRIC_DEFAULT");
    const sealed = Buffer.from(first.CiphertextBlob!);
    expect(sealed.includes(plaintext)).toBe(false);
    expect(sealed.equals(Buffer.from(second.CiphertextBlob!))).toBe(false);

    for (const KeyId of [undefined, key.Arn, "alias/round-trip"]) {
      const decrypted = await kms.send(
        new DecryptCommand({ CiphertextBlob: sealed, EncryptionContext: context, KeyId }),
      );
      expect(Buffer.from(decrypted.Plaintext!).equals(plaintext)).toBe(true);
      expect(decrypted.KeyId).toBe(key.Arn);
    }
    // The context is a set of pairs: the order they are sent in does not matter.
    const reordered = {
      "strata:purpose": context["strata:purpose"],
      "strata:volume": context["strata:volume"],
    };
    const again = await kms.send(
      new DecryptCommand({ CiphertextBlob: sealed, EncryptionContext: reordered }),
    );
    expect(Buffer.from(again.Plaintext!).equals(plaintext)).toBe(true);
  });

  it("refuses another encryption context, altered bytes and a ciphertext passed off as another key's", async () => {
    const key = await newKey();
    const other = await newKey();
    const sealed = Buffer.from((await encrypt(key.KeyId!)).CiphertextBlob!);
    const others: (Record<string, string> | undefined)[] = [
      { ...context, "strata:volume": "vol-2" },
      { "strata:volume": "vol-1" },
      {},
      undefined,
    ];
    for (const EncryptionContext of others) {
      const refused = await refusal(
        kms.send(new DecryptCommand({ CiphertextBlob: sealed, EncryptionContext })),
      );
      expect(refused.name).toBe("InvalidCiphertextException");
    }
    const altered = Buffer.from(sealed);
    altered[altered.length - 20]! ^= 1;
    expect(
      (await refusal(kms.send(new DecryptCommand({ CiphertextBlob: altered, EncryptionContext: context }))))
        .name,
    ).toBe("InvalidCiphertextException");
    // The header names the key; pointing it at another key does not make that key decrypt it.
    const forged = Buffer.from(sealed);
    forged.write(other.KeyId!, 1, "latin1");
    expect(
      (await refusal(kms.send(new DecryptCommand({ CiphertextBlob: forged, EncryptionContext: context }))))
        .name,
    ).toBe("InvalidCiphertextException");
    expect(
      (
        await refusal(
          kms.send(new DecryptCommand({ CiphertextBlob: Buffer.from("short"), EncryptionContext: context })),
        )
      ).name,
    ).toBe("InvalidCiphertextException");

    const wrongKey = await refusal(
      kms.send(new DecryptCommand({ CiphertextBlob: sealed, EncryptionContext: context, KeyId: other.Arn })),
    );
    expect(wrongKey.name).toBe("IncorrectKeyException");
  });

  it("refuses a ciphertext of another KMS: its key does not exist here", async () => {
    const elsewhere = await startAwsEndpoint(kmsProtocol(new LocalKms("local")));
    const client = new KMSClient({ ...CLIENT_CONFIG, endpoint: elsewhere.url });
    try {
      const { KeyMetadata } = await client.send(new CreateKeyCommand({}));
      const { CiphertextBlob } = await client.send(
        new EncryptCommand({ KeyId: KeyMetadata!.KeyId, Plaintext: plaintext, EncryptionContext: context }),
      );
      const refused = await refusal(
        kms.send(new DecryptCommand({ CiphertextBlob, EncryptionContext: context })),
      );
      expect(refused.name).toBe("NotFoundException");
      expect(refused.message).toContain(KeyMetadata!.KeyId!);
    } finally {
      client.destroy();
      await elsewhere.close();
    }
  });

  it("validates the plaintext's size and the algorithm", async () => {
    const key = await newKey();
    const large = await refusal(
      kms.send(new EncryptCommand({ KeyId: key.KeyId, Plaintext: Buffer.alloc(4097) })),
    );
    expect(large.name).toBe("ValidationException");
    expect(large.message).toContain("4096");
    const missing = await refusal(kms.send(new EncryptCommand({ KeyId: key.KeyId, Plaintext: undefined })));
    expect(missing.name).toBe("ValidationException");
    expect(missing.message).toContain("'plaintext'");
    const asymmetric = await refusal(
      kms.send(
        new EncryptCommand({
          KeyId: key.KeyId,
          Plaintext: plaintext,
          EncryptionAlgorithm: "RSAES_OAEP_SHA_256",
        }),
      ),
    );
    expect(asymmetric.name).toBe("InvalidKeyUsageException");
  });
});

describe("DisableKey and EnableKey", () => {
  it("refuse every cryptographic use of a disabled key, and its ciphertexts decrypt again once enabled", async () => {
    const key = await newKey();
    await kms.send(new CreateAliasCommand({ AliasName: "alias/switched", TargetKeyId: key.KeyId }));
    const sealed = (await encrypt(key.KeyId!)).CiphertextBlob!;
    await kms.send(new DisableKeyCommand({ KeyId: key.Arn }));
    const described = await kms.send(new DescribeKeyCommand({ KeyId: "alias/switched" }));
    expect(described.KeyMetadata).toMatchObject({ Enabled: false, KeyState: "Disabled" });

    for (const call of [
      encrypt("alias/switched"),
      kms.send(new DecryptCommand({ CiphertextBlob: sealed, EncryptionContext: context })),
      kms.send(new GenerateDataKeyCommand({ KeyId: key.KeyId, KeySpec: "AES_256" })),
    ]) {
      const refused = await refusal(call);
      expect(refused.name).toBe("DisabledException");
      expect(refused.message).toBe(`${key.Arn} is disabled.`);
    }

    await kms.send(new EnableKeyCommand({ KeyId: key.KeyId }));
    const decrypted = await kms.send(
      new DecryptCommand({ CiphertextBlob: sealed, EncryptionContext: context }),
    );
    expect(Buffer.from(decrypted.Plaintext!).equals(plaintext)).toBe(true);
    expect((await refusal(kms.send(new DisableKeyCommand({ KeyId: "alias/switched" })))).name).toBe(
      "NotFoundException",
    );
  });
});

describe("GenerateDataKey", () => {
  it("makes a data key of the asked size with its ciphertext, which Decrypt opens under the same context", async () => {
    const key = await newKey();
    for (const [size, bytes] of [
      [{ KeySpec: "AES_256" as const }, 32],
      [{ KeySpec: "AES_128" as const }, 16],
      [{ NumberOfBytes: 64 }, 64],
    ] as const) {
      const made = await kms.send(
        new GenerateDataKeyCommand({ KeyId: key.Arn, EncryptionContext: context, ...size }),
      );
      expect(made.KeyId).toBe(key.Arn);
      expect(made.Plaintext).toHaveLength(bytes);
      const opened = await kms.send(
        new DecryptCommand({ CiphertextBlob: made.CiphertextBlob, EncryptionContext: context }),
      );
      expect(Buffer.from(opened.Plaintext!).equals(Buffer.from(made.Plaintext!))).toBe(true);
    }
  });

  it("wants exactly one of NumberOfBytes and KeySpec, within KMS's bounds", async () => {
    const key = await newKey();
    for (const size of [
      {},
      { KeySpec: "AES_256" as const, NumberOfBytes: 32 },
      { NumberOfBytes: 1025 },
      { NumberOfBytes: 0 },
    ]) {
      const refused = await refusal(kms.send(new GenerateDataKeyCommand({ KeyId: key.KeyId, ...size })));
      expect(refused.name).toBe("ValidationException");
    }
  });
});

describe("the keys saved to a file", () => {
  it("decrypt after a restart what they encrypted before, with their aliases and states, and only the owner reads them", async () => {
    const dir = await mkdtemp(join(tmpdir(), "strata-kms-"));
    const file = join(dir, "kms.json");
    let changes = 0;
    const first = await LocalKms.load(file, "local", () => changes++);
    const before = await startAwsEndpoint(kmsProtocol(first));
    const client = new KMSClient({ ...CLIENT_CONFIG, endpoint: before.url });
    try {
      const { KeyMetadata } = await client.send(new CreateKeyCommand({ Description: "kept" }));
      const disabled = (await client.send(new CreateKeyCommand({}))).KeyMetadata!;
      await client.send(new CreateAliasCommand({ AliasName: "alias/kept", TargetKeyId: KeyMetadata!.KeyId }));
      await client.send(new DisableKeyCommand({ KeyId: disabled.KeyId }));
      expect(changes).toBe(4);
      const { CiphertextBlob } = await client.send(
        new EncryptCommand({ KeyId: "alias/kept", Plaintext: plaintext, EncryptionContext: context }),
      );
      await first.saveTo(file);
      await before.close();
      expect((await stat(file)).mode & 0o777).toBe(0o600);

      const again = await startAwsEndpoint(kmsProtocol(await LocalKms.load(file, "elsewhere")));
      const restarted = new KMSClient({ ...CLIENT_CONFIG, endpoint: again.url });
      try {
        const opened = await restarted.send(
          new DecryptCommand({ CiphertextBlob, EncryptionContext: context, KeyId: "alias/kept" }),
        );
        expect(Buffer.from(opened.Plaintext!).equals(plaintext)).toBe(true);
        // The region of the saved keys, not the one asked for: their ARNs are in key files.
        expect(opened.KeyId).toBe(KeyMetadata!.Arn);
        const described = await restarted.send(new DescribeKeyCommand({ KeyId: disabled.Arn }));
        expect(described.KeyMetadata).toMatchObject({
          KeyState: "Disabled",
          CreationDate: disabled.CreationDate,
        });
      } finally {
        restarted.destroy();
        await again.close();
      }

      await writeFile(file, JSON.stringify({ version: 1, keys: "none" }));
      await expect(LocalKms.load(file)).rejects.toThrow(`${file} is not a local KMS's keys`);
      expect(JSON.parse(await readFile(file, "utf8"))).toEqual({ version: 1, keys: "none" });
    } finally {
      client.destroy();
      await rm(dir, { recursive: true, force: true });
    }
  });

  it("are none when there is no file yet", async () => {
    const kms = await LocalKms.load(join(tmpdir(), `strata-kms-none-${process.pid}.json`), "local");
    expect(() => kms.describeKey({ KeyId: "alias/anything" })).toThrow("is not found");
  });
});
