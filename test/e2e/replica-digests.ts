import { createHash } from "node:crypto";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { DynamoDBClient } from "@aws-sdk/client-dynamodb";
import { log } from "../../agent/log.js";
import { connectReplica, type ReplicaClient } from "../../agent/replication/client.js";
import type { Volume } from "../../core/model.js";
import { StateStore } from "../../core/state/store.js";
import type { ClusterFile } from "../../infra/local/cluster-file.js";

const READ_BYTES = 4 * 1024 * 1024;

/** An authenticated replication client to `node`'s replica server, at the address it registered. */
export async function replicaClientOf(dir: string, file: ClusterFile, node: string): Promise<ReplicaClient> {
  const secret = (await readFile(join(dir, "cluster-secret"), "utf8")).trim();
  const store = new StateStore({
    tableName: file.dynamodb.table,
    client: new DynamoDBClient({
      endpoint: file.dynamodb.endpoint,
      region: "local",
      credentials: { accessKeyId: "local", secretAccessKey: "local" },
    }),
  });
  try {
    const [host, port] = (await store.nodes.get(node)).addresses.replication.split(":");
    return await connectReplica({ host: host!, port: Number(port), secret, log });
  } finally {
    store.close();
  }
}

/** Every replica's bytes, read over the replication protocol from its own node: node → SHA-256. */
export async function replicaDigests(
  dir: string,
  file: ClusterFile,
  volume: Volume,
): Promise<Map<string, string>> {
  const digests = new Map<string, string>();
  for (const replica of volume.replicas) {
    const client = await replicaClientOf(dir, file, replica.node);
    try {
      const hash = createHash("sha256");
      for (let offset = 0; offset < volume.sizeBytes; offset += READ_BYTES) {
        hash.update(await client.read(volume.id, offset, READ_BYTES));
      }
      digests.set(replica.node, hash.digest("hex"));
    } finally {
      await client.close();
    }
  }
  return digests;
}
