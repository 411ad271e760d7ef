/**
 * A replica server holding one replica, in its own process so a test can kill -9 it like a node
 * dying. Opens the replica in DIR if there is one (a node coming back with its old data), else
 * creates it. Usage: node --import tsx replica-process.ts DIR SECRET VOLUME REPLICA SIZE EPOCH.
 * Prints {"port": N} once listening.
 */
import { readdir } from "node:fs/promises";
import { pino } from "pino";
import { startReplicaServer } from "../../agent/replication/server/server.js";
import { Replica } from "../../agent/store/replica.js";
import { createReplica, TestAllocator } from "../store/helpers.js";

const [dir, secret, volumeId, replicaId, size, epoch] = process.argv.slice(2);
const log = pino({ level: "silent" });
const exists = await readdir(dir!).then(
  (files) => files.includes("replica.json"),
  () => false,
);
const replica = exists
  ? await Replica.open(dir!, { allocator: new TestAllocator(), log })
  : await createReplica(dir!, Number(size), undefined, { volumeId, replicaId, epoch: Number(epoch), log });
const server = await startReplicaServer({
  host: "127.0.0.1",
  port: 0,
  secret: secret!,
  resolve: (id) => (id === volumeId ? replica : undefined),
  log,
});
process.stdout.write(`${JSON.stringify({ port: server.address.port })}\n`);
