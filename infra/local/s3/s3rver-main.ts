import type { Server } from "node:http";
import { createRequire } from "node:module";
import type { AddressInfo } from "node:net";
import { parseArgs } from "node:util";
import { LOCAL_CREDENTIALS } from "../../../core/local-aws-environment.js";
import { S3_STOP_GRACE_MS, type S3ServerMessage } from "./protocol.js";

/**
 * The local S3 server's process (dist/local-s3.mjs): s3rver on a loopback port, started by
 * local-s3.ts with `node --openssl-legacy-provider`, which s3rver needs because it encrypts its
 * ListObjects continuation tokens with DES, a cipher OpenSSL 3 only has in its legacy provider.
 * Without it, any listing that spans more than one page fails with an internal error.
 */

/** The subset of s3rver's options and API used here (s3rver ships no type declarations). */
interface S3rverOptions {
  address: string;
  port: number;
  silent: boolean;
  directory: string;
  /** Created at start when missing (kept, with its objects, when present). */
  configureBuckets: { name: string }[];
  /** Path-style only: a host name is never taken for a bucket. */
  vhostBuckets: boolean;
}
interface S3rver {
  run(): Promise<AddressInfo>;
  /** Set by run(). */
  httpServer?: Server;
}
interface S3rverAccount {
  createKeyPair(accessKeyId: string, secretAccessKey: string): void;
}

const require = createRequire(import.meta.url);
const S3rverClass = require("s3rver") as new (options: S3rverOptions) => S3rver;
// s3rver checks signatures against its own account's keys; the local cluster's placeholder
// credentials become one of them, so every local SDK client signs with the same pair.
const { DUMMY_ACCOUNT } = require("s3rver/lib/models/account") as { DUMMY_ACCOUNT: S3rverAccount };
DUMMY_ACCOUNT.createKeyPair(LOCAL_CREDENTIALS.accessKeyId, LOCAL_CREDENTIALS.secretAccessKey);

const { values } = parseArgs({
  options: {
    directory: { type: "string" },
    port: { type: "string", default: "0" },
    bucket: { type: "string" },
  },
});
if (values.directory === undefined || values.bucket === undefined) {
  process.stderr.write("usage: local-s3.mjs --directory DIR --bucket NAME [--port N]\n");
  process.exit(2);
}

const server = new S3rverClass({
  address: "127.0.0.1",
  port: Number(values.port),
  silent: true,
  directory: values.directory,
  configureBuckets: [{ name: values.bucket }],
  vhostBuckets: false,
});
const { port } = await server.run();
const listening: S3ServerMessage = { kind: "listening", port };
if (process.connected) process.send?.(listening);

/**
 * Requests under way are finished (an object is written in place, so a cut upload would leave a
 * truncated object), then the process exits. Its supervisor going away, even by SIGKILL, closes
 * the IPC channel: the server never outlives it.
 */
let stopping = false;
function stop(): void {
  if (stopping) return;
  stopping = true;
  setTimeout(() => process.exit(1), S3_STOP_GRACE_MS).unref();
  const http = server.httpServer;
  if (http === undefined) process.exit(0);
  http.close(() => process.exit(0));
  http.closeIdleConnections();
}
process.on("SIGTERM", stop);
process.on("disconnect", stop);
// Gone before the handler was there: no event will come.
if (!process.connected) stop();
