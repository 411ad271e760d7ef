import { type ChildProcess, spawn } from "node:child_process";
import { closeSync, mkdirSync, openSync, readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { AGENT_NODE_FLAGS } from "../../infra/local/agent-entry.js";
import type { NetnsLab } from "./netns.js";

const AGENT_BUNDLE = join(import.meta.dirname, "..", "..", "dist", "agent.mjs");
const READY_TIMEOUT_MS = 30_000;

export interface NetnsAgentOptions {
  lab: NetnsLab;
  /** The lab host (network namespace) the agent runs in; also its node id, as node-<host>. */
  host: string;
  zone: string;
  /** Its data dir and log live under here. */
  root: string;
  stateTable: string;
  /** The agent's environment on top of this process's: AWS endpoint, cluster secret, timeouts. */
  env: Record<string, string>;
}

interface AgentJson {
  pid: number;
  apiUrl: string;
  nbdAddress: string;
  nbdSocket: string | null;
  replicationAddress: string | null;
}

/**
 * A cluster-mode agent (dist/agent.mjs) running inside a lab host's network namespace, listening
 * on that host's address for its control API, NBD and the replication protocol, so that a
 * partition of the host cuts all three. NBD is also served on a Unix socket, which no network
 * partition touches: the way a pod on the node reaches its agent. The log (JSON lines, level
 * info) goes to <root>/<host>/agent.log.
 */
export class NetnsAgent {
  readonly nodeId: string;
  readonly dataDir: string;
  readonly logPath: string;
  readonly nbdSocket: string;
  endpoints!: AgentJson;
  private child: ChildProcess | undefined;
  private exited: Promise<void> = Promise.resolve();

  constructor(private readonly options: NetnsAgentOptions) {
    this.nodeId = `node-${options.host}`;
    this.dataDir = join(options.root, options.host);
    this.logPath = join(this.dataDir, "agent.log");
    this.nbdSocket = join(this.dataDir, "nbd.sock");
  }

  /** Starts the agent and resolves once it serves (agent.json written, /healthz answers). */
  async start(): Promise<this> {
    const { lab, host, zone, stateTable, env } = this.options;
    mkdirSync(this.dataDir, { recursive: true });
    const agentFile = join(this.dataDir, "agent.json");
    rmSync(agentFile, { force: true });
    const address = lab.address(host);
    const { command, args } = lab.command(host, process.execPath, [
      ...AGENT_NODE_FLAGS,
      AGENT_BUNDLE,
      "--data-dir",
      this.dataDir,
      "--node-id",
      this.nodeId,
      "--zone",
      zone,
      "--api-listen",
      `${address}:0`,
      "--nbd-listen",
      `${address}:0`,
      "--nbd-socket",
      this.nbdSocket,
      "--replication-listen",
      `${address}:0`,
      "--state-table",
      stateTable,
    ]);
    const log = openSync(this.logPath, "a");
    // `ip netns exec` execs the agent in place: the child's pid is the agent's. The IPC channel makes
    // it exit if this process dies without stopping it (agent/main.ts stops on disconnect).
    const child = spawn(command, args, {
      stdio: ["ignore", log, log, "ipc"],
      env: { ...process.env, STRATA_LOG_LEVEL: "info", ...env, STRATA_NODE_ID: this.nodeId },
    });
    closeSync(log);
    this.child = child;
    this.exited = new Promise((resolve) => child.once("exit", () => resolve()));
    const deadline = Date.now() + READY_TIMEOUT_MS;
    for (;;) {
      if (child.exitCode !== null || child.signalCode !== null || Date.now() > deadline) {
        await this.kill9();
        throw new Error(`${this.nodeId} did not start; the end of ${this.logPath}:\n${this.rawTail(10)}`);
      }
      const info = readJson(agentFile);
      if (info !== undefined && info.pid === child.pid) {
        const healthy = await fetch(`${info.apiUrl}/healthz`).then(
          (response) => response.ok,
          () => false,
        );
        if (healthy) {
          this.endpoints = info;
          return this;
        }
      }
      await sleep(100);
    }
  }

  /** A control API call; the body is parsed JSON (undefined when empty). */
  async api<T = unknown>(method: string, path: string, body?: unknown): Promise<{ status: number; body: T }> {
    const response = await fetch(`${this.endpoints.apiUrl}${path}`, {
      method,
      headers: body === undefined ? {} : { "content-type": "application/json" },
      body: body === undefined ? null : JSON.stringify(body),
      signal: AbortSignal.timeout(60_000),
    });
    const text = await response.text();
    return { status: response.status, body: (text ? JSON.parse(text) : undefined) as T };
  }

  /** The export over the agent's Unix socket: reachable from this machine whatever the network does. */
  nbdUnixUri(volume: string): string {
    return `nbd+unix:///${volume}?socket=${this.nbdSocket}`;
  }

  /** The export over TCP, at the host's address. */
  nbdUri(volume: string): string {
    return `nbd://${this.endpoints.nbdAddress}/${volume}`;
  }

  /** The agent's log entries, parsed. */
  logEntries(): { level: number; msg: string; [key: string]: unknown }[] {
    let text = "";
    try {
      text = readFileSync(this.logPath, "utf8");
    } catch {
      return [];
    }
    return text
      .split("\n")
      .filter((line) => line.startsWith("{"))
      .flatMap((line) => {
        try {
          return [JSON.parse(line) as { level: number; msg: string }];
        } catch {
          return [];
        }
      });
  }

  /** The last `count` lines of the log at warn level or above, raw, for failure messages. */
  logTail(count: number, minLevel = 40): string[] {
    return this.logEntries()
      .filter((entry) => entry.level >= minLevel)
      .slice(-count)
      .map((entry) => JSON.stringify(entry));
  }

  private rawTail(count: number): string {
    try {
      return readFileSync(this.logPath, "utf8").trimEnd().split("\n").slice(-count).join("\n");
    } catch {
      return "(no log)";
    }
  }

  async kill9(): Promise<void> {
    const child = this.child;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    child.kill("SIGKILL");
    await this.exited;
  }
}

function readJson(path: string): AgentJson | undefined {
  try {
    return JSON.parse(readFileSync(path, "utf8")) as AgentJson;
  } catch {
    return undefined;
  }
}
