/**
 * Real replicas for coordinator tests: a volume record in a real StateStore (dynalite), one
 * replica per node — the coordinator's own node holds a Replica in this process (also served over
 * TCP, as the agent does, so another node's coordinator can reach it), other nodes are replica
 * servers in this process or in child processes (to kill -9).
 */
import { type ChildProcess, spawn } from "node:child_process";
import { once } from "node:events";
import { join } from "node:path";
import { pino } from "pino";
import { afterAll, afterEach, beforeAll } from "vitest";
import type { Logger } from "../../agent/log.js";
import { connectReplica, type ReplicaClient } from "../../agent/replication/client.js";
import { VolumeCoordinator } from "../../agent/replication/coordinator/coordinator.js";
import { StoreMembership } from "../../agent/replication/coordinator/store-membership.js";
import {
  localReplicaHandle,
  type ReplicaTarget,
  remoteReplicaHandle,
} from "../../agent/replication/replica-handle.js";
import { type ReplicaServer, startReplicaServer } from "../../agent/replication/server/server.js";
import type { Replica } from "../../agent/store/replica.js";
import type { LocalDynamoDb } from "../../core/state/local-dynamodb.js";
import type { VolumeRecord } from "../../core/state/records.js";
import type { StateStore } from "../../core/state/store.js";
import { freshStore, startDynamoDb } from "../core/state-harness.js";
import { createReplica, tempDir } from "../store/helpers.js";
import { checksum as hashReads } from "./checksum.js";

export const SECRET = "cluster-secret-for-coordinator-tests";
export const quiet: Logger = pino({ level: "silent" });

/** One node's replica of the test volume. */
export interface ReplicaNode {
  readonly nodeId: string;
  readonly replicaId: string;
  readonly port: number;
  /** The Replica object when it lives in this process. */
  readonly replica: Replica | undefined;
  /** A new authenticated connection to the node's replica server. */
  connect(): Promise<ReplicaClient>;
  /** SHA-256 of the whole volume as the replica itself reads it. */
  checksum(sizeBytes: number): Promise<string>;
  epoch(): Promise<number>;
  stop(): Promise<void>;
}

function connectTo(port: number): Promise<ReplicaClient> {
  return connectReplica({ host: "127.0.0.1", port, secret: SECRET, log: quiet, timeoutMs: 10_000 });
}

/** A replica and its server in this process. */
export class InProcessNode implements ReplicaNode {
  private constructor(
    readonly nodeId: string,
    readonly replicaId: string,
    readonly replica: Replica,
    private readonly server: ReplicaServer,
    private readonly cleanup: () => Promise<void>,
  ) {}

  static async start(nodeId: string, volumeId: string, sizeBytes: number, epoch: number) {
    const dir = await tempDir();
    const replicaId = `replica-${nodeId}`;
    const replica = await createReplica(join(dir.path, "replica"), sizeBytes, undefined, {
      volumeId,
      replicaId,
      epoch,
      log: quiet,
    });
    const server = await startReplicaServer({
      host: "127.0.0.1",
      port: 0,
      secret: SECRET,
      resolve: (id) => (id === volumeId ? replica : undefined),
      log: quiet,
    });
    return new InProcessNode(nodeId, replicaId, replica, server, dir.cleanup);
  }

  get port(): number {
    return this.server.address.port;
  }

  connect(): Promise<ReplicaClient> {
    return connectTo(this.port);
  }

  checksum(sizeBytes: number): Promise<string> {
    return hashReads(sizeBytes, (offset, length) => this.replica.read(offset, length));
  }

  async epoch(): Promise<number> {
    return this.replica.epoch;
  }

  async stop(): Promise<void> {
    await this.server.close();
    await this.replica.close();
    await this.cleanup();
  }
}

/** A replica server in a child process: it can be killed with SIGKILL and restarted on its data. */
export class ChildNode implements ReplicaNode {
  readonly replica = undefined;
  private child: ChildProcess | undefined;
  private currentPort = 0;

  private constructor(
    readonly nodeId: string,
    readonly replicaId: string,
    private readonly args: string[],
    private readonly cleanup: () => Promise<void>,
  ) {}

  static async start(nodeId: string, volumeId: string, sizeBytes: number, epoch: number) {
    const dir = await tempDir();
    const replicaId = `replica-${nodeId}`;
    const args = [join(dir.path, "replica"), SECRET, volumeId, replicaId, String(sizeBytes), String(epoch)];
    const node = new ChildNode(nodeId, replicaId, args, dir.cleanup);
    await node.restart();
    return node;
  }

  get port(): number {
    return this.currentPort;
  }

  /** Starts the process (again), opening the replica's existing data if there is some. */
  async restart(): Promise<void> {
    const child = spawn(
      process.execPath,
      ["--import", "tsx", join(import.meta.dirname, "replica-process.ts"), ...this.args],
      { stdio: ["ignore", "pipe", "inherit"] },
    );
    let output = "";
    for await (const chunk of child.stdout!) {
      output += String(chunk);
      if (output.includes("\n")) break;
    }
    this.currentPort = (JSON.parse(output) as { port: number }).port;
    this.child = child;
  }

  async kill(): Promise<void> {
    const child = this.child;
    if (child === undefined || child.exitCode !== null || child.signalCode !== null) return;
    const exited = once(child, "exit");
    child.kill("SIGKILL");
    await exited;
  }

  connect(): Promise<ReplicaClient> {
    return connectTo(this.port);
  }

  async checksum(sizeBytes: number): Promise<string> {
    const client = await this.connect();
    try {
      // Epoch 0: an unfenced read of the replica's own bytes.
      return await hashReads(sizeBytes, (offset, length) => client.read(this.args[2]!, offset, length));
    } finally {
      await client.close();
    }
  }

  async epoch(): Promise<number> {
    const client = await this.connect();
    try {
      return (await client.getState(this.args[2]!)).epoch;
    } finally {
      await client.close();
    }
  }

  async stop(): Promise<void> {
    await this.kill();
    await this.cleanup();
  }
}

export type NodeKind = "in-process" | "child";

export interface AttachOptions {
  log?: Logger;
  maxStoreRetryMs?: number;
  /** Attach as after a coordinator crash (see VolumeCoordinator.attach). */
  reconcile?: boolean;
}

/** A replicated volume: its record in the store and one replica per node, all at epoch 1. */
export class TestVolume {
  private constructor(
    readonly store: StateStore,
    readonly record: VolumeRecord,
    readonly nodes: ReplicaNode[],
  ) {}

  static async create(store: StateStore, sizeBytes: number, kinds: readonly NodeKind[]): Promise<TestVolume> {
    const nodeIds = kinds.map((_, i) => `node-${String.fromCharCode(97 + i)}`);
    const record = await store.volumes.create({
      name: `vol-${Math.random().toString(36).slice(2, 8)}`,
      sizeBytes,
      replicationFactor: kinds.length,
      replicas: nodeIds.map((node) => ({ replicaId: `replica-${node}`, node, state: "in-sync" })),
    });
    const nodes = await Promise.all(
      kinds.map((kind, i) =>
        kind === "child"
          ? ChildNode.start(nodeIds[i]!, record.id, sizeBytes, record.epoch)
          : InProcessNode.start(nodeIds[i]!, record.id, sizeBytes, record.epoch),
      ),
    );
    return new TestVolume(store, record, nodes);
  }

  /** Starts a node with a new, empty replica the store does not list yet (a rebuild target). */
  async addNode(nodeId: string, kind: NodeKind): Promise<ReplicaNode> {
    const start = kind === "child" ? ChildNode.start : InProcessNode.start;
    const node = await start(nodeId, this.volumeId, this.record.sizeBytes, this.record.epoch);
    this.nodes.push(node);
    return node;
  }

  get volumeId(): string {
    return this.record.id;
  }

  node(nodeId: string): ReplicaNode {
    const node = this.nodes.find((candidate) => candidate.nodeId === nodeId);
    if (node === undefined) throw new Error(`no node ${nodeId}`);
    return node;
  }

  /** The replica `nodeId` would hand a coordinator: its own replica directly, others over TCP. */
  async target(nodeId: string, onNode: string): Promise<ReplicaTarget> {
    const node = this.node(nodeId);
    const handle =
      nodeId === onNode && node.replica !== undefined
        ? localReplicaHandle(node.replica)
        : remoteReplicaHandle(await node.connect(), this.volumeId);
    return { replicaId: node.replicaId, nodeId, state: "in-sync", handle };
  }

  /** A coordinator on `onNode` for the replicas the store lists, attached (it took the epoch). */
  async attach(onNode: string, options: AttachOptions = {}): Promise<VolumeCoordinator> {
    const volume = await this.store.volumes.get(this.volumeId);
    const replicas = await Promise.all(volume.replicas.map((replica) => this.target(replica.node, onNode)));
    const coordinator = new VolumeCoordinator({
      volumeId: volume.id,
      sizeBytes: volume.sizeBytes,
      epoch: volume.epoch,
      replicas,
      membership: new StoreMembership(this.store.volumes, volume.id, onNode),
      log: options.log ?? quiet,
      ...(options.maxStoreRetryMs === undefined ? {} : { maxStoreRetryMs: options.maxStoreRetryMs }),
    });
    await coordinator.attach({ reconcile: options.reconcile ?? false });
    return coordinator;
  }

  async checksums(): Promise<Map<string, string>> {
    const sums = new Map<string, string>();
    for (const node of this.nodes) sums.set(node.nodeId, await node.checksum(this.record.sizeBytes));
    return sums;
  }

  async stop(): Promise<void> {
    await Promise.all(this.nodes.map((node) => node.stop()));
  }
}

/** What a coordinator test file works with; see useCoordinatorSuite. */
export interface CoordinatorSuite {
  /** The file's dynalite. */
  readonly dynamo: LocalDynamoDb;
  /** The file's store, over a fresh table. */
  readonly store: StateStore;
  /** A test volume in `store` (the suite's unless given), stopped after the test. */
  createVolume(sizeBytes: number, kinds: readonly NodeKind[], store?: StateStore): Promise<TestVolume>;
  /** `volume.attach(onNode, options)`; the coordinator is closed after the test, before the volume stops. */
  attach(volume: TestVolume, onNode: string, options?: AttachOptions): Promise<VolumeCoordinator>;
}

/**
 * Registers a coordinator test file's hooks: a real dynalite and a fresh store for the file, and
 * after each test the coordinators it attached closed, then its volume stopped. Call it at the top
 * level of the file; the returned accessors are valid inside hooks and tests registered after it.
 */
export function useCoordinatorSuite(): CoordinatorSuite {
  let dynamo: LocalDynamoDb | undefined;
  let store: StateStore | undefined;
  let volume: TestVolume | undefined;
  const coordinators: VolumeCoordinator[] = [];
  const started = <T>(value: T | undefined): T => {
    if (value === undefined) throw new Error("the coordinator suite's beforeAll has not run");
    return value;
  };

  beforeAll(async () => {
    dynamo = await startDynamoDb();
    store = await freshStore();
  });
  afterEach(async () => {
    await Promise.all(coordinators.splice(0).map((coordinator) => coordinator.close()));
    await volume?.stop();
    volume = undefined;
  });
  afterAll(async () => {
    store?.close();
    await dynamo?.close();
  });

  return {
    get dynamo() {
      return started(dynamo);
    },
    get store() {
      return started(store);
    },
    async createVolume(sizeBytes, kinds, on = started(store)) {
      volume = await TestVolume.create(on, sizeBytes, kinds);
      return volume;
    },
    async attach(target, onNode, options) {
      const coordinator = await target.attach(onNode, options);
      coordinators.push(coordinator);
      return coordinator;
    },
  };
}
