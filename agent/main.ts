import "./threadpool.js";
import { mkdir } from "node:fs/promises";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { startControlApi } from "./api/server.js";
import { writeJsonAtomic } from "./durable-file.js";
import { log } from "./log.js";
import { NodeMembership } from "./membership.js";
import { startNbdServer } from "./nbd/server.js";
import { type DriveSpec, Pool, parseDriveSpec } from "./pool.js";
import { VolumeManager } from "./volumes.js";

const AGENT_VERSION = "0.1.0";
const USAGE = `usage: strata-agent --data-dir DIR [--node-id ID] [--zone ZONE] [--drive PATH[:SIZE] ...]
       [--api-listen HOST:PORT] [--nbd-listen HOST:PORT] [--nbd-socket PATH]
       [--replication-listen HOST:PORT] [--state-table TABLE]`;

/** The agent's discovery file: the supervisor and the CLI read it to find the agent's endpoints. */
export const AGENT_FILE = "agent.json";

function parseHostPort(text: string, flag: string): { host: string; port: number } {
  const match = /^(.+):(\d{1,5})$/.exec(text);
  const port = match ? Number(match[2]) : Number.NaN;
  if (!match || port > 65535) throw new Error(`${flag} must be HOST:PORT, got "${text}"`);
  return { host: match[1]!, port };
}

/** A mistake on the command line: the agent answers it with its usage. */
class UsageError extends Error {}

function parseCommandLine() {
  try {
    return readOptions();
  } catch (error) {
    throw new UsageError(error instanceof Error ? error.message : String(error));
  }
}

function readOptions() {
  const { values } = parseArgs({
    options: {
      "data-dir": { type: "string" },
      "node-id": { type: "string", default: "node-1" },
      zone: { type: "string", default: "local-a" },
      drive: { type: "string", multiple: true },
      "api-listen": { type: "string", default: "127.0.0.1:9410" },
      "nbd-listen": { type: "string", default: "127.0.0.1:10809" },
      "nbd-socket": { type: "string" },
      // Recorded in the node's registration for peers; the replication listener itself comes next.
      "replication-listen": { type: "string", default: "127.0.0.1:9510" },
      // Without it the agent runs standalone; with it, it registers and heartbeats in this table.
      "state-table": { type: "string" },
    },
    strict: true,
  });
  const dataDir = values["data-dir"];
  if (!dataDir) throw new Error("--data-dir is required");
  const drives: DriveSpec[] = (values.drive ?? [join(dataDir, "drives", "d0")]).map(parseDriveSpec);
  return {
    dataDir,
    nodeId: values["node-id"],
    zone: values.zone,
    drives,
    api: parseHostPort(values["api-listen"], "--api-listen"),
    nbd: parseHostPort(values["nbd-listen"], "--nbd-listen"),
    nbdSocket: values["nbd-socket"] ?? null,
    replication: parseHostPort(values["replication-listen"], "--replication-listen"),
    stateTable: values["state-table"] ?? null,
  };
}

async function main(): Promise<void> {
  const config = parseCommandLine();
  await mkdir(config.dataDir, { recursive: true });
  const pool = await Pool.open(config.drives);
  const volumes = await VolumeManager.load(
    { nodeId: config.nodeId, zone: config.zone, version: AGENT_VERSION, startedAt: new Date().toISOString() },
    pool,
    log,
  );
  const nbd = await startNbdServer({
    registry: volumes,
    tcp: config.nbd,
    ...(config.nbdSocket ? { unixPath: config.nbdSocket } : {}),
    log,
  });
  const api = await startControlApi({ service: volumes, host: config.api.host, port: config.api.port, log });
  const tcp = nbd.tcpAddress!;
  // A wildcard bind is reachable on loopback; the URIs handed to clients must name a real address.
  const nbdHost = tcp.host === "0.0.0.0" || tcp.host === "::" ? "127.0.0.1" : tcp.host;
  volumes.endpoints = {
    apiUrl: api.url,
    nbdAddress: `${nbdHost}:${tcp.port}`,
    nbdSocket: nbd.unixPath ?? null,
  };
  await writeJsonAtomic(join(config.dataDir, AGENT_FILE), {
    nodeId: config.nodeId,
    zone: config.zone,
    pid: process.pid,
    ...volumes.endpoints,
  });
  log.info({ ...volumes.endpoints, drives: config.drives }, "agent ready");
  const membership =
    config.stateTable === null
      ? undefined
      : NodeMembership.start({
          tableName: config.stateTable,
          node: {
            id: config.nodeId,
            zone: config.zone,
            addresses: {
              api: api.url,
              nbd: volumes.endpoints.nbdAddress,
              replication: `${config.replication.host}:${config.replication.port}`,
            },
          },
          pool: async () => {
            const { capacityBytes, freeBytes } = (await volumes.nodeStatus()).pool;
            return { capacityBytes, freeBytes };
          },
          log,
        });

  let stopping = false;
  const stop = async (reason: string) => {
    if (stopping) return;
    stopping = true;
    log.info({ reason }, "agent stopping");
    // Down in the store first, so the cluster stops counting on this node before it goes.
    await membership?.stop();
    await nbd.close();
    await api.close();
    await volumes.close();
    log.info("agent stopped; every volume flushed");
    process.exit(0);
  };
  process.on("SIGTERM", () => void stop("SIGTERM"));
  process.on("SIGINT", () => void stop("SIGINT"));
  // Started by a supervisor with an IPC channel: when the supervisor dies, so do we.
  process.on("disconnect", () => void stop("supervisor gone"));
}

main().catch((error: unknown) => {
  const message = error instanceof Error ? error.message : String(error);
  log.fatal({ err: error }, message);
  process.stderr.write(`strata-agent: ${message}\n${error instanceof UsageError ? `${USAGE}\n` : ""}`);
  process.exit(1);
});
