import { mkdir } from "node:fs/promises";
import { basename } from "node:path";
import { S3_ENDPOINT_VARIABLE } from "../../core/cloud/s3-client.js";
import { DriveTag } from "../../core/drive-sets.js";
import { conflict, StrataError } from "../../core/errors.js";
import { readAgentFile } from "./agent-file.js";
import { type AgentRun, launchAgent } from "./agent-run.js";
import type { DriveChange } from "./aws/local-ec2.js";
import { LocalCloud, localCloudTiming } from "./cloud.js";
import {
  type CloudsnapStorage,
  type CloudsnapStorageOptions,
  startCloudsnapStorage,
} from "./cloudsnap-storage.js";
import { type ClusterFile, readClusterFile, removeClusterFile, writeClusterFile } from "./cluster-file.js";
import { loadClusterSecret } from "./cluster-secret.js";
import type { SupervisedNodeView, ZoneView } from "./control-protocol.js";
import { type ControlServer, startControlServer } from "./control-server.js";
import { NodeInstances } from "./node-instances.js";
import type { NodeSpec } from "./node-spec.js";
import { commandLine, isAlive, terminate } from "./processes.js";
import { type LocalStateService, startLocalStateService } from "./state-service.js";
import { STOP_GRACE_MS, SupervisedNode } from "./supervised-node.js";

/** The local cluster's name: its drives' tag, its node groups' prefix, its events' clusterName. */
export const LOCAL_CLUSTER_NAME = "strata-local";

/** An agent registers within a heartbeat of serving; longer means it cannot reach the store. */
const REGISTRATION_TIMEOUT_MS = 30_000;

export interface LocalClusterOptions {
  /** Absolute: agents are found again by the paths on their command lines. */
  dir: string;
  nodes: NodeSpec[];
  /** dist/agent.mjs (see agent-entry.ts). */
  agentEntry: string;
  /** Where cloudsnaps go; by default a local S3 server under <dir>/s3 and a generated passphrase. */
  cloudsnaps?: CloudsnapStorageOptions;
  /** Concise progress lines for the terminal. */
  report(line: string): void;
}

/**
 * The local cluster: this process runs the state store (dynalite) and the S3 server for cloudsnaps
 * (s3rver, in a process of its own), supervises one agent process per node spec, keeps them running
 * (except the ones the operator stopped), serves the control channel (control-protocol.ts), and
 * publishes where everything listens in <dir>/cluster.json for the CLI.
 */
export class LocalCluster {
  private readonly nodes: SupervisedNode[] = [];
  /** Nodes whose instance was lost: they serve again where their drive set is attached next. */
  private readonly lost = new Set<string>();
  private cloud: LocalCloud | undefined;
  private instances: NodeInstances | undefined;
  private readonly startedAt = new Date().toISOString();
  private stopped: Promise<void> | undefined;
  private control: ControlServer | undefined;
  /** Agents' IPC channels keep the event loop alive, but not between a crash and its restart. */
  private readonly keepAlive = setInterval(() => {}, 1 << 30);

  private constructor(
    private readonly options: LocalClusterOptions,
    private readonly state: LocalStateService,
    private readonly cloudsnaps: CloudsnapStorage,
    private readonly agentEnvironment: Record<string, string>,
  ) {}

  /**
   * Claims the directory, starts the state store, starts every agent and waits until each serves and
   * has registered, then writes cluster.json. If anything fails, what was started is stopped and the
   * error is thrown.
   */
  static async start(options: LocalClusterOptions): Promise<LocalCluster> {
    await mkdir(options.dir, { recursive: true });
    await claimDirectory(options.dir, options.report);
    const secret = await loadClusterSecret(options.dir);
    const state = await startLocalStateService(options.dir);
    let cloudsnaps: CloudsnapStorage;
    try {
      cloudsnaps = await startCloudsnapStorage(options.dir, options.cloudsnaps);
    } catch (error) {
      await state.close();
      throw error;
    }
    const cluster = new LocalCluster(options, state, cloudsnaps, {
      ...state.environment,
      ...cloudsnaps.environment,
      // For the replication protocol: agents of this cluster authenticate each other with it.
      STRATA_CLUSTER_SECRET: secret,
    });
    try {
      const cloud = await LocalCloud.start({
        dir: options.dir,
        clusterName: LOCAL_CLUSTER_NAME,
        stateTable: state.tableName,
        zones: [...new Set(options.nodes.map((spec) => spec.zone))],
        timing: localCloudTiming(),
        functionEnvironment: cloudsnaps.environment,
        report: options.report,
        onDriveChange: (change) => cluster.onDriveChange(change),
      });
      cluster.cloud = cloud;
      cluster.instances = new NodeInstances(cloud.ec2, LOCAL_CLUSTER_NAME);
      await Promise.all(options.nodes.map((spec) => stopLeftoverAgent(spec, options.report)));
      for (const spec of options.nodes) await cluster.instances.ensureInstance(spec);
      for (const spec of options.nodes) cluster.nodes.push(cluster.supervise(spec));
      await startAll(cluster.nodes);
      options.report(`state store: dynalite at ${state.endpoint}, table ${state.tableName}`);
      options.report(`cloudsnaps: ${cloudsnaps.description}`);
      for (const node of cluster.nodes)
        options.report(`${node.spec.id} (${node.spec.zone}): agent up, pid ${node.current.pid}`);
      cluster.control = await startControlServer(options.dir, cluster.nodeControl());
      await cluster.publish();
    } catch (error) {
      await cluster.stop();
      throw error;
    }
    return cluster;
  }

  /** What cluster.json says: the supervisor, the state store, and each node's endpoints. */
  get file(): ClusterFile {
    return {
      pid: process.pid,
      startedAt: this.startedAt,
      dynamodb: { endpoint: this.state.endpoint, table: this.state.tableName },
      ...(this.cloud === undefined
        ? {}
        : {
            cloud: {
              clusterName: LOCAL_CLUSTER_NAME,
              endpoints: { ...this.cloud.environment, [S3_ENDPOINT_VARIABLE]: this.cloudsnaps.endpoint },
              cloudsnaps: { bucket: this.cloudsnaps.bucket, passphraseFile: this.cloudsnaps.passphraseFile },
            },
          }),
      nodes: this.nodes.map(({ spec, current }) => ({
        id: spec.id,
        zone: spec.zone,
        apiUrl: current.info.apiUrl,
        nbdAddress: current.info.nbdAddress,
        nbdSocket: current.info.nbdSocket,
        dataDir: spec.dataDir,
      })),
    };
  }

  /**
   * Stops the control channel, every agent (SIGTERM, SIGKILL after 10 s; they mark themselves down
   * in the store on the way), then the local cloud, the S3 server (after the agents: it may be taking
   * their last uploads) and the store, and removes cluster.json. Safe to call twice.
   */
  stop(): Promise<void> {
    this.stopped ??= (async () => {
      await this.control?.close();
      await this.cloud?.stopAutomation();
      await Promise.all(this.nodes.map((node) => node.stop(STOP_GRACE_MS)));
      await this.cloud?.close();
      await this.cloudsnaps.close();
      await this.state.close();
      await removeClusterFile(this.options.dir);
      clearInterval(this.keepAlive);
    })();
    return this.stopped;
  }

  private supervise(spec: NodeSpec): SupervisedNode {
    return new SupervisedNode(spec, (nodeSpec) => this.launch(nodeSpec), {
      report: this.options.report,
      restarted: () => void this.publish(),
    });
  }

  /** Ready means serving and registered in the store with this run's heartbeat. */
  private async launch(spec: NodeSpec): Promise<AgentRun> {
    const launchedAt = Date.now();
    const instanceId = this.instances?.instanceOf(spec.id);
    if (instanceId === undefined) throw conflict(`${spec.id} has no instance holding its drive set`);
    const run = await launchAgent(spec, this.options.agentEntry, {
      ...this.agentEnvironment,
      STRATA_INSTANCE_ID: instanceId,
    });
    try {
      await this.state.waitForRegistration(spec.id, launchedAt, REGISTRATION_TIMEOUT_MS);
    } catch (error) {
      await run.stop(STOP_GRACE_MS);
      throw error;
    }
    return run;
  }

  private nodeControl() {
    const find = (nodeId: string) => this.find(nodeId);
    const view = (node: SupervisedNode) => this.viewOf(node);
    return {
      list: () => this.nodes.map(view),
      stop: async (nodeId: string, kill: boolean) => {
        const node = find(nodeId);
        await node.halt({ kill });
        this.options.report(
          `${nodeId}: ${kill ? "killed (SIGKILL)" : "stopped"} by the operator; not restarted until \`strata node start ${nodeId}\``,
        );
        return view(node);
      },
      start: async (nodeId: string) => {
        const node = find(nodeId);
        if (this.stopped) throw conflict("the cluster is stopping");
        const wasRunning = node.pid !== null;
        // A node whose instance was lost comes back on a new one, with its drive set moved there.
        this.lost.delete(nodeId);
        await this.cloudParts().instances.ensureInstance(node.spec);
        await node.resume();
        if (!wasRunning) this.options.report(`${nodeId}: started by the operator (pid ${node.current.pid})`);
        await this.publish();
        return view(node);
      },
      kill: async (nodeId: string, replace: boolean) => {
        const node = find(nodeId);
        const { instances } = this.cloudParts();
        await node.halt({ kill: true });
        this.lost.add(nodeId);
        const lostInstance = instances.loseInstance(nodeId);
        this.options.report(
          `${nodeId}: instance ${lostInstance ?? "(none)"} lost: agent killed, instance terminated, its drives detached`,
        );
        if (replace) {
          const replacement = instances.launchReplacement(node.spec.zone);
          this.options.report(`${node.spec.zone}: the node group started ${replacement} to replace it`);
        }
        return view(node);
      },
      failZone: (zone: string) => this.changeZone(zone, "fail"),
      restoreZone: (zone: string) => this.changeZone(zone, "restore"),
    };
  }

  /**
   * A zone fails as AWS zones do: its instances keep running but cannot be reached (their agents are
   * killed here), and AWS starts a zonal autoshift away from it; it returns when the agents serve
   * again and the autoshift completes.
   */
  private async changeZone(zone: string, change: "fail" | "restore"): Promise<ZoneView> {
    const members = this.nodes.filter((node) => node.spec.zone === zone);
    if (members.length === 0) {
      const zones = [...new Set(this.nodes.map((node) => node.spec.zone))].join(", ");
      throw new StrataError("NOT_FOUND", `no zone "${zone}" in this cluster (zones: ${zones})`);
    }
    const { cloud, instances } = this.cloudParts();
    if (change === "fail") {
      await Promise.all(members.map((node) => node.halt({ kill: true })));
      cloud.bus.publish(instances.autoshift(zone, "In Progress"));
      this.options.report(
        `${zone}: failed (${members.length} agents unreachable); AWS shifts traffic away from it`,
      );
    } else {
      await Promise.all(members.filter((node) => !this.lost.has(node.spec.id)).map((node) => node.resume()));
      cloud.bus.publish(instances.autoshift(zone, "Completed"));
      this.options.report(`${zone}: restored; the autoshift away from it has ended`);
      await this.publish();
    }
    return { zone, nodes: members.map((node) => this.viewOf(node)) };
  }

  /**
   * A drive moved in the local cloud. Attached to an instance while its node's instance was lost:
   * the node serves again from there (its agent starts with that instance's id), which is how a
   * replacement instance takes a lost node over. Detached from under a live agent: that agent has
   * lost its disk, as it would in AWS, and stops.
   */
  private onDriveChange(change: DriveChange): void {
    const nodeId = change.tags[DriveTag.driveSet];
    const node = this.nodes.find((candidate) => candidate.spec.id === nodeId);
    if (node === undefined || this.stopped) return;
    if (change.kind === "attached" && this.lost.delete(node.spec.id)) {
      this.options.report(
        `${node.spec.id}: its drive set is on ${change.instanceId} now; starting its agent there`,
      );
      node.resume().then(
        () => this.publish(),
        (error: unknown) =>
          this.options.report(`${node.spec.id}: could not start: ${(error as Error).message}`),
      );
    } else if (change.kind === "detached" && node.pid !== null && !this.lost.has(node.spec.id)) {
      this.options.report(
        `${node.spec.id}: its drive set was detached from ${change.instanceId}; its agent stops`,
      );
      this.lost.add(node.spec.id);
      void node.halt({ kill: true });
    }
  }

  private find(nodeId: string): SupervisedNode {
    const node = this.nodes.find(({ spec }) => spec.id === nodeId);
    if (node) return node;
    const known = this.nodes.map(({ spec }) => spec.id).join(", ");
    throw new StrataError("NOT_FOUND", `no node "${nodeId}" in this cluster (nodes: ${known})`);
  }

  private cloudParts(): { cloud: LocalCloud; instances: NodeInstances } {
    if (this.cloud === undefined || this.instances === undefined)
      throw conflict("the local cloud is not running");
    return { cloud: this.cloud, instances: this.instances };
  }

  private viewOf(node: SupervisedNode): SupervisedNodeView {
    return {
      id: node.spec.id,
      zone: node.spec.zone,
      process: node.state,
      pid: node.pid,
      apiUrl: node.current.info.apiUrl,
      dataDir: node.spec.dataDir,
      instanceId: this.instances?.instanceOf(node.spec.id) ?? null,
    };
  }

  private async publish(): Promise<void> {
    if (this.stopped) return;
    try {
      await writeClusterFile(this.options.dir, this.file);
    } catch (error) {
      this.options.report(`cannot update cluster.json: ${(error as Error).message}`);
      throw error;
    }
  }
}

/** Starts every node at once; on failure, the first failing node (in spec order) is the one reported. */
async function startAll(nodes: readonly SupervisedNode[]): Promise<void> {
  const outcomes = await Promise.allSettled(nodes.map((node) => node.start()));
  const failure = outcomes.find((outcome) => outcome.status === "rejected");
  if (failure) throw failure.reason;
}

/**
 * One supervisor per directory. A cluster.json whose supervisor is alive means the cluster is
 * running: refuse. One whose supervisor is gone (kill -9, a crash, a reboot) is stale: take over.
 */
async function claimDirectory(dir: string, report: (line: string) => void): Promise<void> {
  let previous: ClusterFile | undefined;
  try {
    previous = await readClusterFile(dir);
  } catch (error) {
    report(`replacing an unreadable cluster.json (${(error as Error).message})`);
    return;
  }
  if (!previous) return;
  if (previous.pid !== process.pid && (await isSupervisor(previous.pid))) {
    throw new Error(
      `a Strata cluster is already running in ${dir} (supervisor pid ${previous.pid}); ` +
        `use it, or stop it with Ctrl-C in its terminal or \`kill ${previous.pid}\``,
    );
  }
  report(`taking over ${dir}: its previous supervisor (pid ${previous.pid}) is no longer running`);
}

/** Alive, and (where /proc tells) really a strata process rather than an unrelated reuse of the pid. */
async function isSupervisor(pid: number): Promise<boolean> {
  if (!isAlive(pid)) return false;
  const args = await commandLine(pid);
  return args === undefined || args.some((arg) => arg.includes("strata"));
}

/**
 * An agent of an earlier run may outlive its supervisor for a moment (or longer, if it is wedged) and
 * would hold the ports and the pool. It is stopped only if its command line proves it is the agent
 * of this very data directory, never on the strength of a pid alone.
 */
async function stopLeftoverAgent(spec: NodeSpec, report: (line: string) => void): Promise<void> {
  const info = await readAgentFile(spec.dataDir);
  if (!info || info.pid === process.pid || !isAlive(info.pid)) return;
  const args = await commandLine(info.pid);
  if (!args?.some((arg) => basename(arg) === "agent.mjs")) return;
  const dataDirAt = args.indexOf("--data-dir");
  if (dataDirAt < 0 || args[dataDirAt + 1] !== spec.dataDir) return;
  report(`${spec.id}: stopping the agent left over from the previous run (pid ${info.pid})`);
  const how = await terminate(info.pid, STOP_GRACE_MS);
  if (how === "killed") report(`${spec.id}: the leftover agent did not stop within 10 s and was killed`);
}
