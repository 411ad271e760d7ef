import type { AddressInfo } from "node:net";
// Imported, not required at run time, so the agent image's bundle carries it (scripts/build.mjs).
import dynalite from "dynalite";

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
