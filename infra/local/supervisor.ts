import { mkdir } from "node:fs/promises";
import { basename } from "node:path";
import { readAgentFile } from "./agent-file.js";
import { type ClusterFile, readClusterFile, removeClusterFile, writeClusterFile } from "./cluster-file.js";
import type { NodeSpec } from "./node-spec.js";
import { commandLine, isAlive, terminate } from "./processes.js";
import { STOP_GRACE_MS, SupervisedNode } from "./supervised-node.js";

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
 * The local cluster: this process supervises one agent process per node spec, keeps them running,
 * and publishes where they listen in <dir>/cluster.json for the CLI.
 */
export class LocalCluster {
  private readonly nodes: SupervisedNode[] = [];
  private readonly startedAt = new Date().toISOString();
  private stopped: Promise<void> | undefined;
  /** Agents' IPC channels keep the event loop alive, but not between a crash and its restart. */
  private readonly keepAlive = setInterval(() => {}, 1 << 30);

  private constructor(private readonly options: LocalClusterOptions) {}

  /**
   * Claims the directory, starts every agent and waits until each serves, then writes cluster.json.
   * If any agent cannot start, the ones already started are stopped and the error is thrown.
   */
  static async start(options: LocalClusterOptions): Promise<LocalCluster> {
    await mkdir(options.dir, { recursive: true });
    await claimDirectory(options.dir, options.report);
    const cluster = new LocalCluster(options);
    try {
      for (const spec of options.nodes) await cluster.startNode(spec);
      await cluster.publish();
    } catch (error) {
      await cluster.stop();
      throw error;
    }
    return cluster;
  }

  /** What cluster.json says: the supervisor and each node's current endpoints. */
  get file(): ClusterFile {
    return {
      pid: process.pid,
      startedAt: this.startedAt,
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

  /** Stops every agent (SIGTERM, SIGKILL after 10 s) and removes cluster.json. Safe to call twice. */
  stop(): Promise<void> {
    this.stopped ??= (async () => {
      await Promise.all(this.nodes.map((node) => node.stop(STOP_GRACE_MS)));
      await removeClusterFile(this.options.dir);
      clearInterval(this.keepAlive);
    })();
    return this.stopped;
  }

  private async startNode(spec: NodeSpec): Promise<void> {
    await stopLeftoverAgent(spec, this.options.report);
    const node = new SupervisedNode(spec, this.options.agentEntry, {
      report: this.options.report,
      restarted: () => void this.publish(),
    });
    this.nodes.push(node);
    await node.start();
    this.options.report(`${spec.id} (${spec.zone}): agent up, pid ${node.current.pid}`);
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
