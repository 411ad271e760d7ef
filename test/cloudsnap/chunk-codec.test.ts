import { randomBytes } from "node:crypto";
import { describe, expect, it } from "vitest";
import { chunkId, decodeChunk, encodeChunk } from "../../agent/cloudsnap/chunk-codec.js";
import {
  newDataKey,
  newPassphraseKdf,
  passphraseKey,
  unwrapDataKey,
  volumeKeys,
  wrapDataKey,
} from "../../agent/cloudsnap/keys.js";

const CHUNK = 1024 * 1024;
const keys = volumeKeys(newDataKey());
const encode = (plaintext: Buffer) => encodeChunk(chunkId(plaintext, keys), plaintext, keys);

describe("a cloudsnap chunk", () => {
  it.each([
    ["random (stored: deflate does not shrink it)", randomBytes(CHUNK)],
    ["zeros (compressed)", Buffer.alloc(CHUNK)],
    ["text (compressed)", Buffer.from("SELECT * FROM orders;\n".repeat(CHUNK / 22).slice(0, CHUNK))],
  ])("round-trips %s byte for byte", async (_what, plaintext) => {
    const { id, sealed } = await encode(plaintext);
    expect(Buffer.compare(await decodeChunk(id, sealed, keys, "pack p1"), plaintext)).toBe(0);
  });

  it("compresses what compresses, and never stores the plaintext in the clear", async () => {
    const zeros = await encode(Buffer.alloc(CHUNK));
    expect(zeros.sealed.length).toBeLessThan(CHUNK / 100);
    const text = Buffer.from("account=42 balance=1000\n".repeat(1000));
    const sealed = (await encode(text)).sealed;
    expect(sealed.includes(Buffer.from("balance"))).toBe(false);
  });

  it("stores a chunk whose start does not compress without deflating the rest, and deflates one whose start does", async () => {
    const PROBE = 64 * 1024;
    const randomHead = Buffer.concat([randomBytes(PROBE), Buffer.alloc(CHUNK - PROBE)]);
    const stored = await encode(randomHead);
    expect(stored.sealed.length).toBeGreaterThan(CHUNK);
    expect(Buffer.compare(await decodeChunk(stored.id, stored.sealed, keys, "pack p1"), randomHead)).toBe(0);

    const zeroHead = Buffer.concat([
      Buffer.alloc(PROBE),
      randomBytes(CHUNK / 2),
      Buffer.alloc(CHUNK / 2 - PROBE),
    ]);
    const deflated = await encode(zeroHead);
    expect(deflated.sealed.length).toBeLessThan(CHUNK / 2 + PROBE);
    expect(Buffer.compare(await decodeChunk(deflated.id, deflated.sealed, keys, "pack p1"), zeroHead)).toBe(
      0,
    );
  });

  it("names equal chunks alike under one volume's keys (dedupe), and differently under another's", async () => {
    const data = randomBytes(4096);
    const first = await encode(data);
    const second = await encode(Buffer.from(data));
    expect(second.id).toBe(first.id);
    expect(Buffer.compare(second.sealed, first.sealed)).not.toBe(0); // fresh nonce each time
    expect(chunkId(data, volumeKeys(newDataKey()))).not.toBe(first.id);
  });

  it("refuses, naming the chunk and its object, a wrong key, a flipped bit, a swapped chunk and a truncated one", async () => {
    const { id, sealed } = await encode(randomBytes(8192));
    const other = await encode(randomBytes(8192));
    await expect(decodeChunk(id, sealed, volumeKeys(newDataKey()), "pack p7")).rejects.toThrow(
      `chunk ${id} in pack p7 does not decrypt: the key is wrong or the object was altered`,
    );
    const flipped = Buffer.from(sealed);
    flipped[100]! ^= 1;
    await expect(decodeChunk(id, flipped, keys, "pack p7")).rejects.toThrow("does not decrypt");
    await expect(decodeChunk(id, other.sealed, keys, "pack p7")).rejects.toThrow("does not decrypt");
    await expect(decodeChunk(id, sealed.subarray(0, 20), keys, "pack p7")).rejects.toThrow("is truncated");
    await expect(decodeChunk("not-an-id", sealed, keys, "pack p7")).rejects.toThrow("malformed id");
  });
});

describe("a volume's data key", () => {
  const kdf = { ...newPassphraseKdf(), N: 2 ** 14 }; // a cheaper cost keeps the test fast

  it("unwraps with the passphrase it was wrapped with, and refuses another in one sentence", async () => {
    const dataKey = newDataKey();
    const wrapped = wrapDataKey(dataKey, await passphraseKey("correct horse", kdf), "vol-1");
    expect(
      Buffer.compare(unwrapDataKey(wrapped, await passphraseKey("correct horse", kdf), "vol-1"), dataKey),
    ).toBe(0);
    const wrong = await passphraseKey("wrong", kdf);
    expect(() => unwrapDataKey(wrapped, wrong, "vol-1")).toThrow(
      "the data key of volume vol-1 does not unwrap: wrong passphrase or key",
    );
    // Bound to its volume: another volume's record cannot reuse it.
    const right = await passphraseKey("correct horse", kdf);
    expect(() => unwrapDataKey(wrapped, right, "vol-2")).toThrow("does not unwrap");
  });

  it("derives different keys from one passphrase in two repositories (salted)", async () => {
    const other = { ...newPassphraseKdf(), N: 2 ** 14 };
    expect(Buffer.compare(await passphraseKey("p", kdf), await passphraseKey("p", other))).not.toBe(0);
    await expect(passphraseKey("", kdf)).rejects.toThrow("passphrase is empty");
  });
});
