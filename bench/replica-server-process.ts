/**
 * One remote node of the replication benchmark: a replica server in its own process (as on
 * another agent), holding replicas on disk under DIR. The benchmark drives it over stdin with one
 * JSON command a line and reads one JSON answer a line on stdout:
 *
 *   {"op":"create","volumeId":"…","replicaId":"…","sizeBytes":N,"epoch":N}  → {"ok":true}
 *   {"op":"destroy","volumeId":"…"}                                          → {"ok":true}
 *
 * Usage: node --import tsx bench/replica-server-process.ts DIR SECRET. Prints {"port":N} once
 * listening. When stdin ends (the benchmark finished, or died) it closes everything and exits, so
 * no replica server outlives its benchmark.
 */
// First import: libuv sizes its thread pool once, when it first starts (as in the agent).
import "../agent/threadpool.js";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { pino } from "pino";
import { Drive } from "../agent/pool.js";
import { startReplicaServer } from "../agent/replication/server/server.js";
import { Replica } from "../agent/store/replica.js";

/** The benchmark's volumes fit many times over; the pool's accounting is not what is measured. */
const UNLIMITED_CAPACITY = Number.MAX_SAFE_INTEGER;

interface CreateCommand {
  op: "create";
  volumeId: string;
  replicaId: string;
  sizeBytes: number;
  epoch: number;
}

interface DestroyCommand {
  op: "destroy";
  volumeId: string;
}

type Command = CreateCommand | DestroyCommand;

const [dir, secret] = process.argv.slice(2);
if (dir === undefined || secret === undefined) {
  process.stderr.write("usage: replica-server-process.ts DIR SECRET\n");
  process.exit(2);
}
const log = pino({ level: "silent" });
const drive = new Drive(dir, UNLIMITED_CAPACITY);
const replicas = new Map<string, Replica>();

const server = await startReplicaServer({
  host: "127.0.0.1",
  port: 0,
  secret,
  resolve: (volumeId) => replicas.get(volumeId),
  log,
});

async function execute(command: Command): Promise<void> {
  const replicaDir = join(dir!, command.volumeId);
  if (command.op === "create") {
    const replica = await Replica.create(replicaDir, {
      volumeId: command.volumeId,
      replicaId: command.replicaId,
      sizeBytes: command.sizeBytes,
      epoch: command.epoch,
      allocator: drive,
      log,
    });
    replicas.set(command.volumeId, replica);
    return;
  }
  const replica = replicas.get(command.volumeId);
  if (replica === undefined) return;
  replicas.delete(command.volumeId);
  await replica.close();
  await Replica.destroy(replicaDir, drive);
}

async function shutdown(): Promise<void> {
  await server.close();
  await Promise.allSettled([...replicas.values()].map((replica) => replica.close()));
  process.exit(0);
}

process.stdout.write(`${JSON.stringify({ port: server.address.port })}\n`);
// Commands run one at a time, in order: each answer is for the line before it.
for await (const line of createInterface({ input: process.stdin })) {
  if (line.trim() === "") continue;
  try {
    await execute(JSON.parse(line) as Command);
    process.stdout.write(`${JSON.stringify({ ok: true })}\n`);
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    process.stdout.write(`${JSON.stringify({ ok: false, error: message })}\n`);
  }
}
await shutdown();
