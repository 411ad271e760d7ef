import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { readdir, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { GetObjectCommand, ListObjectsV2Command, PutObjectCommand, type S3Client } from "@aws-sdk/client-s3";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { cloudsnapS3Client, cloudsnapS3Config } from "../../core/cloud/s3-client.js";
import { isAlive } from "../../infra/local/processes.js";
import { type LocalS3, S3_BUCKETS_DIR, s3ClientAt, startLocalS3 } from "../../infra/local/s3/local-s3.js";
import { PACKAGE_ROOT, prepareClusterDir } from "../cli/strata-process.js";
import { eventually } from "../support/eventually.js";
import { processesMentioning } from "../support/processes.js";

/**
 * The local cluster's S3 server (s3rver in a child process) with the real SDK client, set up as
 * cloudsnaps set it up: large objects and ranged reads come back byte for byte, listings page
 * (which needs OpenSSL's legacy provider in the server's process), objects outlive a restart, and
 * the server's process never outlives its parent.
 */

const BUCKET = "strata-cloudsnaps";
const MiB = 1024 * 1024;

let dir: string;
let s3: LocalS3 | undefined;
let client: S3Client | undefined;

beforeAll(async () => {
  // The SDK's notice that it will drop Node 20, once per client: noise here.
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED = "true";
  // Builds dist/local-s3.mjs from the sources as they are now.
  dir = await prepareClusterDir("strata-s3-");
});

afterAll(async () => {
  client?.destroy();
  await s3?.close();
  await rm(dir, { recursive: true, force: true });
});

async function start(): Promise<S3Client> {
  s3 = await startLocalS3({ dir: join(dir, "s3"), bucket: BUCKET });
  client = s3ClientAt(s3.endpoint);
  return client;
}

async function read(from: S3Client, key: string, range?: string): Promise<Buffer> {
  const got = await from.send(new GetObjectCommand({ Bucket: BUCKET, Key: key, Range: range }));
  return Buffer.from(await got.Body!.transformToByteArray());
}

async function listAll(from: S3Client, prefix: string): Promise<{ keys: string[]; pages: number }> {
  const keys: string[] = [];
  let pages = 0;
  let token: string | undefined;
  do {
    const page = await from.send(
      new ListObjectsV2Command({ Bucket: BUCKET, Prefix: prefix, ContinuationToken: token }),
    );
    pages += 1;
    keys.push(...(page.Contents ?? []).map((object) => object.Key!));
    token = page.NextContinuationToken;
  } while (token !== undefined);
  return { keys, pages };
}

const big = randomBytes(40 * MiB);
const keyCount = 1_050;
const manyKey = (i: number) => `many/${String(i).padStart(5, "0")}`;

describe("the local S3 server", () => {
  it("starts on a free loopback port with the bucket, and keeps objects under its directory", async () => {
    const s3client = await start();
    expect(s3!.endpoint).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    expect(s3!.bucket).toBe(BUCKET);
    expect(await readdir(join(dir, "s3", S3_BUCKETS_DIR))).toEqual([BUCKET]);
    const listed = await s3client.send(new ListObjectsV2Command({ Bucket: BUCKET }));
    expect(listed.KeyCount).toBe(0);
  });

  it("takes a 40 MiB object and gives back the whole of it and any range, byte for byte", async () => {
    await client!.send(new PutObjectCommand({ Bucket: BUCKET, Key: "pack/big", Body: big }));
    expect((await read(client!, "pack/big")).equals(big)).toBe(true);
    const from = 17 * MiB + 12_345;
    const to = from + 5 * MiB - 1;
    const range = await read(client!, "pack/big", `bytes=${from}-${to}`);
    expect(range.length).toBe(5 * MiB);
    expect(range.equals(big.subarray(from, to + 1))).toBe(true);
  });

  it("lists more than a page of keys, each once", async () => {
    const keys = Array.from({ length: keyCount }, (_, i) => manyKey(i));
    // A few dozen uploads at a time: quick, without flooding a small machine.
    for (let at = 0; at < keys.length; at += 50) {
      await Promise.all(
        keys
          .slice(at, at + 50)
          .map((Key) => client!.send(new PutObjectCommand({ Bucket: BUCKET, Key, Body: Key }))),
      );
    }
    const listed = await listAll(client!, "many/");
    expect(listed.pages).toBe(2);
    expect(listed.keys).toHaveLength(keyCount);
    expect(new Set(listed.keys).size).toBe(keyCount);
    expect([...listed.keys].sort()).toEqual(keys);
  });

  it("is reached by the cloudsnap client through AWS_ENDPOINT_URL_S3 alone", async () => {
    const env = { AWS_ENDPOINT_URL_S3: s3!.endpoint };
    expect(cloudsnapS3Config(env)).toMatchObject({ forcePathStyle: true });
    expect(cloudsnapS3Config({})).toMatchObject({ forcePathStyle: false });
    const saved = { ...process.env };
    Object.assign(process.env, env, {
      AWS_REGION: "local",
      AWS_ACCESS_KEY_ID: "local",
      AWS_SECRET_ACCESS_KEY: "local",
    });
    const fromEnvironment = cloudsnapS3Client({ fresh: true });
    try {
      expect(await read(fromEnvironment, "many/00007")).toEqual(Buffer.from("many/00007"));
    } finally {
      fromEnvironment.destroy();
      process.env = saved;
    }
  });

  it("keeps every object across a restart on the same directory, and leaves no process behind", async () => {
    const { pid } = s3!;
    client!.destroy();
    await s3!.close();
    expect(isAlive(pid)).toBe(false);
    expect(await processesMentioning(dir)).toEqual([]);
    await s3!.close(); // safe twice

    const again = await start();
    expect(s3!.pid).not.toBe(pid);
    expect((await read(again, "pack/big")).equals(big)).toBe(true);
    expect((await listAll(again, "many/")).keys).toHaveLength(keyCount);
  });

  it("stops when the process that started it is killed", async () => {
    // A stand-in for the supervisor: starts the server on its own directory, says where, then is
    // killed with SIGKILL, which runs no code of its own.
    const parentDir = join(dir, "killed-parent");
    const script = join(dir, "parent.mts");
    const module = join(PACKAGE_ROOT, "infra/local/s3/local-s3.ts");
    await writeFile(
      script,
      [
        `import { startLocalS3 } from ${JSON.stringify(module)};`,
        `const s3 = await startLocalS3({ dir: ${JSON.stringify(parentDir)}, bucket: "b-1" });`,
        "process.send({ pid: s3.pid });",
      ].join("\n"),
    );
    const parent = spawn(process.execPath, ["--import", "tsx", script], {
      cwd: PACKAGE_ROOT,
      stdio: ["ignore", "inherit", "inherit", "ipc"],
    });
    const exited = new Promise((resolve) => parent.once("exit", resolve));
    const serverPid = await new Promise<number>((resolve, reject) => {
      parent.once("message", (message: { pid: number }) => resolve(message.pid));
      parent.once("exit", (code) =>
        reject(new Error(`the parent exited (${code}) before the server started`)),
      );
    });
    expect(isAlive(serverPid)).toBe(true);
    parent.kill("SIGKILL");
    await exited;
    await eventually(async () => !isAlive(serverPid), "the orphaned server exits", 10_000);
  });
});
