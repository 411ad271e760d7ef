import { type ChildProcess, spawn } from "node:child_process";
import { mkdir, open, readFile } from "node:fs/promises";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { CreateBucketCommand, HeadBucketCommand, S3Client } from "@aws-sdk/client-s3";
import { cloudsnapS3Config, S3_ENDPOINT_VARIABLE } from "../../../core/cloud/s3-client.js";
import { LOCAL_CREDENTIALS } from "../../../core/local-aws-environment.js";
import { findBuilt } from "../agent-entry.js";
import { exitOf, stopChild } from "../processes.js";
import { S3_STOP_GRACE_MS, type S3ServerMessage } from "./protocol.js";

/** `<dir>/buckets`: one directory per bucket, one file per object (s3rver's layout). */
export const S3_BUCKETS_DIR = "buckets";
/** `<dir>/s3rver.log`: what the server process printed (errors only: it runs silent). */
export const S3_LOG = "s3rver.log";
/** s3rver loads in well under a second; a slow, shared machine gets a wide margin. */
const READY_TIMEOUT_MS = 30_000;

/**
 * See s3rver-main.ts: s3rver's paginated listings need OpenSSL's legacy provider. It is given to
 * the server's own process only, so the supervisor and the agents keep OpenSSL's defaults.
 */
const S3_NODE_FLAGS: readonly string[] = ["--openssl-legacy-provider"];

export interface LocalS3Options {
  /** Where the objects live (under <dir>/buckets), kept across restarts. */
  dir: string;
  /** 0 (the default) lets the system pick a free loopback port. */
  port?: number;
  /** Created if missing. */
  bucket: string;
}

export interface LocalS3 {
  /** For AWS_ENDPOINT_URL_S3, e.g. http://127.0.0.1:41234. */
  endpoint: string;
  bucket: string;
  /** The server's process. */
  pid: number;
  /** Stops the server's process (letting requests under way finish); safe to call twice. */
  close(): Promise<void>;
}

/**
 * Runs s3rver in a child process of its own (dist/local-s3.mjs) and resolves once it answers for
 * `bucket`. The child leaves with its parent, however the parent ends: it exits when the IPC
 * channel closes, and is killed if the parent exits without closing it.
 */
export async function startLocalS3(options: LocalS3Options): Promise<LocalS3> {
  const directory = join(options.dir, S3_BUCKETS_DIR);
  await mkdir(directory, { recursive: true });
  const logPath = join(options.dir, S3_LOG);
  const log = await open(logPath, "a");
  let child: ChildProcess;
  try {
    const entry = findBuilt(join("dist", "local-s3.mjs"), "the local S3 server");
    const args = ["--directory", directory, "--bucket", options.bucket, "--port", String(options.port ?? 0)];
    child = spawn(process.execPath, [...S3_NODE_FLAGS, entry, ...args], {
      stdio: ["ignore", log.fd, log.fd, "ipc"],
      // Own process group: a Ctrl-C in the terminal reaches the supervisor only, which stops the
      // server after the agents, whose last uploads it may still be taking.
      detached: true,
    });
  } finally {
    await log.close();
  }
  const exited = exitOf(child);
  const pid = child.pid;
  if (pid === undefined) throw new Error(`the local S3 server could not start: ${await exited}`);
  const killOnExit = () => child.kill("SIGKILL");
  process.once("exit", killOnExit);
  let closing: Promise<void> | undefined;
  const close = () => {
    closing ??= stopChild(child, exited, S3_STOP_GRACE_MS * 2).finally(() => process.off("exit", killOnExit));
    return closing;
  };

  try {
    const port = await listeningPort(child, exited, logPath);
    const endpoint = `http://127.0.0.1:${port}`;
    // Listening is not yet proof that requests signed as local mode's get through to the bucket.
    await ensureBucket(endpoint, options.bucket);
    return { endpoint, bucket: options.bucket, pid, close };
  } catch (error) {
    await close();
    throw error;
  }
}

/**
 * An S3 client for a given endpoint with local mode's placeholder credentials, set up as the
 * cloudsnap client is from the environment (for the supervisor's checks, tests and the CLI).
 */
export function s3ClientAt(endpoint: string): S3Client {
  return new S3Client({
    ...cloudsnapS3Config({ [S3_ENDPOINT_VARIABLE]: endpoint }),
    endpoint,
    region: "local",
    credentials: LOCAL_CREDENTIALS,
    maxAttempts: 2,
  });
}

/**
 * Makes sure the server at `endpoint` answers for `bucket`, creating the bucket if it is missing;
 * throws, naming the endpoint, if it does not answer.
 */
export async function ensureBucket(endpoint: string, bucket: string): Promise<void> {
  const client = s3ClientAt(endpoint);
  try {
    try {
      await client.send(new HeadBucketCommand({ Bucket: bucket }));
      return;
    } catch (error) {
      if ((error as { name?: string }).name !== "NotFound") throw error;
    }
    await client.send(new CreateBucketCommand({ Bucket: bucket }));
  } catch (error) {
    throw new Error(
      `the S3 endpoint ${endpoint} does not answer for bucket ${bucket}: ${(error as Error).message}`,
    );
  } finally {
    client.destroy();
  }
}

/** Whichever comes first: the server's "listening", its exit, or the timeout. */
async function listeningPort(child: ChildProcess, exited: Promise<string>, logPath: string): Promise<number> {
  const settled = new AbortController();
  const listening = new Promise<number>((resolve) => {
    child.on("message", (message: Partial<S3ServerMessage> | null) => {
      if (message?.kind === "listening" && typeof message.port === "number") resolve(message.port);
    });
  });
  const outcome = await Promise.race([
    listening,
    exited.then((how) => ({ exitedWith: how })),
    sleep(READY_TIMEOUT_MS, undefined, { signal: settled.signal }).then(
      () => ({ timedOut: true as const }),
      () => ({ timedOut: true as const }),
    ),
  ]).finally(() => settled.abort());
  if (typeof outcome === "number") return outcome;
  const why = "exitedWith" in outcome ? `it stopped (${outcome.exitedWith})` : "it did not start in time";
  const said = await lastLine(logPath);
  throw new Error(`the local S3 server could not start: ${why}${said ? `: ${said}` : ""}; see ${logPath}`);
}

async function lastLine(path: string): Promise<string | undefined> {
  try {
    return (await readFile(path, "utf8")).trimEnd().split("\n").at(-1);
  } catch {
    return undefined;
  }
}
