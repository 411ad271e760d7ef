import { mkdir } from "node:fs/promises";
import { basename } from "node:path";
import { conflict, StrataError } from "../../core/errors.js";
import { readAgentFile } from "./agent-file.js";
import { type AgentRun, launchAgent } from "./agent-run.js";
import { type ClusterFile, readClusterFile, removeClusterFile, writeClusterFile } from "./cluster-file.js";
import { loadClusterSecret } from "./cluster-secret.js";
import type { SupervisedNodeView } from "./control-protocol.js";
import { type ControlServer, startControlServer } from "./control-server.js";
import type { NodeSpec } from "./node-spec.js";
import { commandLine, isAlive, terminate } from "./processes.js";
import { type LocalStateService, startLocalStateService } from "./state-service.js";
import { STOP_GRACE_MS, SupervisedNode } from "./supervised-node.js";

/** An agent registers within a heartbeat of serving; longer means it cannot reach the store. */
const REGISTRATION_TIMEOUT_MS = 30_000;

export interface LocalClusterOptions {
  /** Absolute: agents are found again by the paths on their command lines. */
  dir: string;
  nodes: NodeSpec[];
  /** dist/agent.mjs (see agent-entry.ts). */
  agentEntry: string;
  /** Concise progress lines for the terminal. */
  report(line: string): void;
}

/**
 * The local cluster: this process runs the state store (dynalite), supervises one agent process per
 * node spec, keeps them running (except the ones the operator stopped), serves the control channel
 * (control-protocol.ts), and publishes where everything listens in <dir>/cluster.json for the CLI.
 */
export class LocalCluster {
  private readonly nodes: SupervisedNode[] = [];
  private readonly startedAt = new Date().toISOString();
  private stopped: Promise<void> | undefined;
  private control: ControlServer | undefined;
  /** Agents' IPC channels keep the event loop alive, but not between a crash and its restart. */
  private readonly keepAlive = setInterval(() => {}, 1 << 30);

  private constructor(
    private readonly options: LocalClusterOptions,
    private readonly state: LocalStateService,
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
    const cluster = new LocalCluster(options, state, {
      ...state.environment,
      // For the replication protocol: agents of this cluster authenticate each other with it.
      STRATA_CLUSTER_SECRET: secret,
    });
    try {
      await Promise.all(options.nodes.map((spec) => stopLeftoverAgent(spec, options.report)));
      for (const spec of options.nodes) cluster.nodes.push(cluster.supervise(spec));
      await startAll(cluster.nodes);
      options.report(`state store: dynalite at ${state.endpoint}, table ${state.tableName}`);
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
   * in the store on the way), then the store, and removes cluster.json. Safe to call twice.
   */
  stop(): Promise<void> {
    this.stopped ??= (async () => {
      await this.control?.close();
      await Promise.all(this.nodes.map((node) => node.stop(STOP_GRACE_MS)));
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
    const run = await launchAgent(spec, this.options.agentEntry, this.agentEnvironment);
    try {
      await this.state.waitForRegistration(spec.id, launchedAt, REGISTRATION_TIMEOUT_MS);
    } catch (error) {
      await run.stop(STOP_GRACE_MS);
      throw error;
    }
    return run;
  }

  private nodeControl() {
    const find = (nodeId: string) => {
      const node = this.nodes.find(({ spec }) => spec.id === nodeId);
      if (node) return node;
      const known = this.nodes.map(({ spec }) => spec.id).join(", ");
      throw new StrataError("NOT_FOUND", `no node "${nodeId}" in this cluster (nodes: ${known})`);
    };
    return {
      list: () => this.nodes.map(viewOf),
      stop: async (nodeId: string, kill: boolean) => {
        const node = find(nodeId);
        await node.halt({ kill });
        this.options.report(
          `${nodeId}: ${kill ? "killed (SIGKILL)" : "stopped"} by the operator; not restarted until \`strata node start ${nodeId}\``,
        );
        return viewOf(node);
      },
      start: async (nodeId: string) => {
        const node = find(nodeId);
        if (this.stopped) throw conflict("the cluster is stopping");
        const wasRunning = node.pid !== null;
        await node.resume();
        if (!wasRunning) this.options.report(`${nodeId}: started by the operator (pid ${node.current.pid})`);
        await this.publish();
        return viewOf(node);
      },
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

function viewOf(node: SupervisedNode): SupervisedNodeView {
  return {
    id: node.spec.id,
    zone: node.spec.zone,
    process: node.state,
    pid: node.pid,
    apiUrl: node.current.info.apiUrl,
    dataDir: node.spec.dataDir,
  };
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
