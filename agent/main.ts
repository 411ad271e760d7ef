import "./threadpool.js";
import { mkdir } from "node:fs/promises";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { heartbeatTimeoutMs } from "../core/liveness.js";
import { useLocalAws } from "../core/local-aws-environment.js";
import { InstanceUnknownError } from "../core/state/errors.js";
import { type LocalDynamoDb, startLocalDynamoDb } from "../core/state/local-dynamodb.js";
import { StateStore } from "../core/state/store.js";
import { startControlApi } from "./api/server.js";
import { CLUSTER_SECRET_VARIABLE, DEFAULT_LISTEN, INSTANCE_ID_VARIABLE } from "./aws/environment.js";
import { ec2Node } from "./aws/startup.js";
import { carryOverNodeLocalVolumes } from "./carry-over.js";
import { configuredRepository } from "./cloudsnap/configured.js";
import { writeJsonAtomic } from "./durable-file.js";
import { log } from "./log.js";
import { NodeMembership, STORE_REQUEST_TIMEOUT_MS } from "./membership.js";
import { startNbdServer } from "./nbd/server.js";
import { startNodeOperations } from "./operations/node-operations.js";
import { volumeExecutors } from "./operations/volume-executors.js";
import { PeerReplicas } from "./peer-replicas.js";
import { type DriveSpec, Pool, parseDriveSpec } from "./pool.js";
import { ReplicaHost } from "./replica-host.js";
import { type ReplicaServer, startReplicaServer } from "./replication/server/server.js";
import { MIN_SECRET_BYTES } from "./replication/wire/auth.js";
import { VolumeCloudsnaps } from "./volumes/cloudsnaps.js";
import { clusterTiming } from "./volumes/cluster-context.js";
import { StorePolicies } from "./volumes/policies.js";
import { ClusterVolumes } from "./volumes/service.js";

const AGENT_VERSION = "0.1.0";
const USAGE = `usage: strata-agent --data-dir DIR [--node-id ID] [--zone ZONE] [--drive PATH[:SIZE] ...]
       [--ec2-drives]
       [--api-listen HOST:PORT] [--nbd-listen HOST:PORT] [--nbd-socket PATH]
       [--replication-listen HOST:PORT] [--state-table TABLE]`;

/** The agent's discovery file: the supervisor and the CLI read it to find the agent's endpoints. */
export const AGENT_FILE = "agent.json";
/** A standalone agent's own state store: <data-dir>/state, a table of one node. */
const STANDALONE_STATE_DIR = "state";
const STANDALONE_STATE_TABLE = "strata-standalone";

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
      "node-id": { type: "string" },
      zone: { type: "string" },
      drive: { type: "string", multiple: true },
      // In AWS: the node id, zone and drives come from the EBS volumes attached to the instance.
      "ec2-drives": { type: "boolean", default: false },
      "api-listen": { type: "string", default: DEFAULT_LISTEN.api },
      "nbd-listen": { type: "string", default: DEFAULT_LISTEN.nbd },
      "nbd-socket": { type: "string" },
      // The replica server's address (needs STRATA_CLUSTER_SECRET); the bound one is registered.
      "replication-listen": { type: "string" },
      // With it, the agent joins the cluster whose state is in this table; without it, the agent
      // runs standalone, a cluster of one node with its state table in the data dir.
      "state-table": { type: "string" },
    },
    strict: true,
  });
  const dataDir = values["data-dir"];
  if (!dataDir) throw new Error("--data-dir is required");
  const ec2Drives = values["ec2-drives"];
  if (ec2Drives && (values["node-id"] ?? values.zone ?? values.drive) !== undefined)
    throw new Error(
      "--ec2-drives finds the node id, zone and drives itself: leave out --node-id, --zone and --drive",
    );
  const drives: DriveSpec[] = (values.drive ?? [join(dataDir, "drives", "d0")]).map(parseDriveSpec);
  return {
    dataDir,
    nodeId: values["node-id"] ?? "node-1",
    zone: values.zone ?? "local-a",
    drives,
    ec2Drives,
    instanceId: process.env[INSTANCE_ID_VARIABLE] || undefined,
    api: parseHostPort(values["api-listen"], "--api-listen"),
    nbd: parseHostPort(values["nbd-listen"], "--nbd-listen"),
    nbdSocket: values["nbd-socket"] ?? null,
    replication: replicationListen(values["replication-listen"]),
    stateTable: values["state-table"] ?? null,
  };
}

/**
 * Where to serve replicas, with the secret peers must prove: only when the cluster secret is set.
 * A weak secret, or --replication-listen without any, is a mistake worth refusing to start over.
 */
function replicationListen(flag: string | undefined) {
  const text = process.env[CLUSTER_SECRET_VARIABLE];
  if (text === undefined || text === "") {
    if (flag !== undefined) {
      throw new Error(
        `--replication-listen needs ${CLUSTER_SECRET_VARIABLE} (at least ${MIN_SECRET_BYTES} bytes)`,
      );
    }
    return null;
  }
  if (Buffer.byteLength(text, "utf8") < MIN_SECRET_BYTES) {
    throw new Error(`${CLUSTER_SECRET_VARIABLE} must be at least ${MIN_SECRET_BYTES} bytes`);
  }
  return { ...parseHostPort(flag ?? DEFAULT_LISTEN.replication, "--replication-listen"), secret: text };
}

/** A wildcard bind is reachable on loopback; addresses handed to others must name a real one. */
function reachableAddress({ host, port }: { host: string; port: number }): string {
  return `${host === "0.0.0.0" || host === "::" ? "127.0.0.1" : host}:${port}`;
}

async function main(): Promise<void> {
  const options = parseCommandLine();
  const config = options.ec2Drives
    ? { ...options, ...(await ec2Node({ root: options.dataDir, stateTable: options.stateTable, log })) }
    : options;
  await mkdir(config.dataDir, { recursive: true });
  const pool = await Pool.open(config.drives);
  const replicas = await ReplicaHost.open(pool, log);
  const identity = {
    nodeId: config.nodeId,
    zone: config.zone,
    version: AGENT_VERSION,
    startedAt: new Date().toISOString(),
  };
  const embedded = config.stateTable === null ? await startStandaloneStore(config.dataDir) : undefined;
  const tableName = config.stateTable ?? STANDALONE_STATE_TABLE;
  // Bounded requests: a coordinator retries a membership write the network lost, instead of
  // waiting minutes for TCP to give up on it while its I/O is held.
  const store = new StateStore({ tableName, requestTimeoutMs: STORE_REQUEST_TIMEOUT_MS });
  if (embedded !== undefined) await store.ensureTable();
  await carryOverNodeLocalVolumes(replicas, store, config.nodeId, log);
  const volumes = new ClusterVolumes(
    identity,
    pool,
    store,
    replicas,
    new PeerReplicas(config.replication?.secret, log),
    clusterTiming(heartbeatTimeoutMs()),
    log,
  );
  const replication: ReplicaServer | undefined =
    config.replication === null
      ? undefined
      : await startReplicaServer({
          host: config.replication.host,
          port: config.replication.port,
          secret: config.replication.secret,
          resolve: (volumeId) => replicas.get(volumeId),
          admin: replicas,
          log,
        });
  const replicationAddress = replication === undefined ? null : reachableAddress(replication.address);
  const nbd = await startNbdServer({
    registry: volumes,
    tcp: config.nbd,
    ...(config.nbdSocket ? { unixPath: config.nbdSocket } : {}),
    log,
  });
  const cloudsnaps = new VolumeCloudsnaps(volumes, store, configuredRepository(), config.nodeId, log);
  const operations = startNodeOperations({
    store,
    node: config.nodeId,
    executors: volumeExecutors(volumes, cloudsnaps, config.nodeId),
    log,
  });
  const api = await startControlApi({
    service: volumes,
    operations: operations.service,
    cloudsnaps,
    policies: new StorePolicies(store),
    host: config.api.host,
    port: config.api.port,
    log,
  });
  volumes.endpoints = {
    apiUrl: api.url,
    nbdAddress: reachableAddress(nbd.tcpAddress!),
    nbdSocket: nbd.unixPath ?? null,
  };
  // Volumes that were attached here before a restart are exported again before the agent says it
  // is ready, so a client that waits for the agent finds them.
  await volumes.resume();
  let stopping = false;
  // Called only once `membership` below is set: by a refusal from it, or by a signal.
  const stop = async (reason: string, exitCode = 0) => {
    if (stopping) return;
    stopping = true;
    log.info({ reason }, "agent stopping");
    // Down in the store first, so the cluster stops counting on this node before it goes.
    await membership.stop();
    await operations.stop();
    // Peers' requests in flight are answered before their replicas close.
    await replication?.close();
    await nbd.close();
    await api.close();
    await volumes.close();
    await replicas.close();
    store.close();
    await embedded?.close();
    log.info("agent stopped; every volume flushed");
    process.exit(exitCode);
  };
  const membership = NodeMembership.start({
    tableName,
    node: {
      id: config.nodeId,
      zone: config.zone,
      ...(config.instanceId ? { instanceId: config.instanceId } : {}),
      addresses: {
        api: api.url,
        nbd: volumes.endpoints.nbdAddress,
        // Empty without a replica server: peers have nothing to reach here.
        replication: replicationAddress ?? "",
      },
    },
    pool: async () => (await volumes.nodeStatus()).pool,
    log,
    // Taken over, the node serves on elsewhere: a clean stop. Refused for want of an instance id,
    // the agent is misconfigured: it fails, so whatever runs it shows why.
    onRefused: (error) => void stop(error.message, error instanceof InstanceUnknownError ? 1 : 0),
  });

  process.on("SIGTERM", () => void stop("SIGTERM"));
  process.on("SIGINT", () => void stop("SIGINT"));
  // Started by a supervisor with an IPC channel: when the supervisor dies, so do we.
  process.on("disconnect", () => void stop("supervisor gone"));
  // Registered (or refused by an unreachable store) before it says it is ready: a volume created
  // the moment the agent is ready finds this node in placement.
  await membership.registrationTried();
  await writeJsonAtomic(join(config.dataDir, AGENT_FILE), {
    nodeId: config.nodeId,
    zone: config.zone,
    pid: process.pid,
    ...volumes.endpoints,
    replicationAddress,
  });
  log.info({ ...volumes.endpoints, replicationAddress, drives: config.drives }, "agent ready");
  if (config.stateTable !== null && replicationAddress === null) {
    log.warn(`no ${CLUSTER_SECRET_VARIABLE}: this node serves no replicas to its peers`);
  }
}

/**
 * A standalone agent is a cluster of one: the same volume service over a DynamoDB-compatible server
 * of its own (dynalite, persistent in the data dir), which every store client of this process
 * reaches through the standard AWS variables, as they reach DynamoDB in AWS.
 */
async function startStandaloneStore(dataDir: string): Promise<LocalDynamoDb> {
  const path = join(dataDir, STANDALONE_STATE_DIR);
  await mkdir(path, { recursive: true });
  const dynamoDb = await startLocalDynamoDb({ path });
  useLocalAws(dynamoDb.endpoint);
  return dynamoDb;
}

main().catch((error: unknown) => {
  const message = error instanceof Error ? error.message : String(error);
  log.fatal({ err: error }, message);
  process.stderr.write(`strata-agent: ${message}\n${error instanceof UsageError ? `${USAGE}\n` : ""}`);
  process.exit(1);
});
