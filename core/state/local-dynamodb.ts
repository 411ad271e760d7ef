import type { Server } from "node:http";
import { createRequire } from "node:module";
import type { AddressInfo } from "node:net";

/** The subset of dynalite's options local mode uses (dynalite ships no type declarations). */
interface DynaliteOptions {
  /** A LevelDB directory, so the table outlives restarts of the local cluster; in memory without. */
  path?: string;
  createTableMs: number;
  deleteTableMs: number;
  updateTableMs: number;
}

const require = createRequire(import.meta.url);
const dynalite = require("dynalite") as (options: DynaliteOptions) => Server;

export interface LocalDynamoDbOptions {
  /** 0 (the default) lets the system pick a free port. */
  port?: number;
  host?: string;
  /** Directory for persistent storage; omitted, the data lives in memory and dies with the server. */
  path?: string;
}

export interface LocalDynamoDb {
  /** For AWS_ENDPOINT_URL_DYNAMODB, e.g. http://127.0.0.1:41234. */
  endpoint: string;
  close(): Promise<void>;
}

/**
 * Starts a DynamoDB-compatible server (dynalite) in this process. Tables become ACTIVE at once
 * instead of after dynalite's default half second, so local starts and tests do not wait.
 */
export async function startLocalDynamoDb(options: LocalDynamoDbOptions = {}): Promise<LocalDynamoDb> {
  const host = options.host ?? "127.0.0.1";
  const server = dynalite({
    ...(options.path === undefined ? {} : { path: options.path }),
    createTableMs: 0,
    deleteTableMs: 0,
    updateTableMs: 0,
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(options.port ?? 0, host, () => {
      server.off("error", reject);
      resolve();
    });
  });
  const { port } = server.address() as AddressInfo;
  return {
    endpoint: `http://${host}:${port}`,
    close: () =>
      new Promise<void>((resolve, reject) => {
        // SDK clients keep idle keep-alive connections; without this, close waits for them to time out.
        server.close((error) => (error ? reject(error) : resolve()));
        server.closeAllConnections();
      }),
  };
}
