/**
 * A replica server in its own process, so a test can freeze it (SIGSTOP) or kill it (SIGKILL)
 * like a node failing. Usage: node --import tsx server-process.ts DIR SECRET. Prints the port.
 */
import { pino } from "pino";
import { startReplicaServer } from "../../agent/replication/server/server.js";
import { createReplica, MiB } from "../store/helpers.js";

const [dir, secret] = process.argv.slice(2);
const log = pino({ level: "silent" });
const replica = await createReplica(dir!, 64 * MiB, undefined, { volumeId: "vol-1", epoch: 1, log });
const server = await startReplicaServer({
  host: "127.0.0.1",
  port: 0,
  secret: secret!,
  resolve: (volumeId) => (volumeId === "vol-1" ? replica : undefined),
  log,
});
process.stdout.write(`${JSON.stringify({ port: server.address.port })}\n`);
