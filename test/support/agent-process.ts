import { type ChildProcess, spawn } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { AGENT_NODE_FLAGS } from "../../infra/local/agent-entry.js";

const AGENT_BUNDLE = join(import.meta.dirname, "..", "..", "dist", "agent.mjs");

export interface AgentEndpoints {
  apiUrl: string;
  nbdAddress: string;
  nbdSocket: string | null;
  pid: number;
  /** host:port of the replica server; null when the agent serves no replicas (no cluster secret). */
  replicationAddress: string | null;
}

/** A real agent process on loopback with its own data dir; ports are picked by the kernel. */
export class AgentProcess {
  private child: ChildProcess | undefined;
  private stderrText = "";
  /** The exit code of the agent started last (null when a signal ended it). */
  private exit: Promise<number | null> | undefined;
  endpoints!: AgentEndpoints;
  readonly dataDir: string;

  constructor(
    readonly root: string = mkdtempSync(join(tmpdir(), "strata-agent-")),
    private readonly extraArgs: string[] = [],
    /** Added to the agent's environment (e.g. STRATA_CLUSTER_SECRET). */
    private readonly env: Record<string, string> = {},
    /** The agent's bundle: dist/agent.mjs, or the image's (test/eks). */
    private readonly bundle: string = AGENT_BUNDLE,
  ) {
    this.dataDir = join(root, "node");
  }

  async start(): Promise<this> {
    const agentFile = join(this.dataDir, "agent.json");
    rmSync(agentFile, { force: true });
    const child = spawn(
      process.execPath,
      [
        ...AGENT_NODE_FLAGS,
        this.bundle,
        "--data-dir",
        this.dataDir,
        "--api-listen",
        "127.0.0.1:0",
        "--nbd-listen",
        "127.0.0.1:0",
        "--nbd-socket",
        join(this.root, "nbd.sock"),
        ...this.extraArgs,
      ],
      { stdio: ["ignore", "ignore", "pipe"], env: { ...process.env, STRATA_LOG_LEVEL: "warn", ...this.env } },
    );
    this.stderrText = "";
    child.stderr?.on("data", (chunk: Buffer) => {
      this.stderrText += chunk.toString();
    });
    this.exit = new Promise((resolve) => child.once("exit", (code) => resolve(code)));
    this.child = child;
    for (let waited = 0; !existsSync(agentFile); waited += 50) {
      if (child.exitCode !== null || waited > 20_000) {
        throw new Error(`agent did not start (exit ${child.exitCode}): ${this.stderrText}`);
      }
      await sleep(50);
    }
    this.endpoints = JSON.parse(readFileSync(agentFile, "utf8")) as AgentEndpoints;
    return this;
  }

  /** What the agent started last wrote on stderr: its log lines at STRATA_LOG_LEVEL (warn) and above. */
  get stderr(): string {
    return this.stderrText;
  }

  /** Resolves with the exit code once the agent started last exits (null when a signal ended it). */
  exited(): Promise<number | null> {
    if (this.exit === undefined) throw new Error("the agent was never started");
    return this.exit;
  }

  nbdUri(volume: string): string {
    return `nbd://${this.endpoints.nbdAddress}/${volume}`;
  }

  /** The agent dies at once: no flush, no close, like a power cut for the process. */
  async kill9(): Promise<void> {
    await this.signal("SIGKILL");
  }

  async stop(): Promise<void> {
    await this.signal("SIGTERM");
  }

  private async signal(signal: NodeJS.Signals): Promise<void> {
    const child = this.child;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise((resolve) => child.once("exit", resolve));
    child.kill(signal);
    await exited;
  }

  async api<T = unknown>(method: string, path: string, body?: unknown): Promise<{ status: number; body: T }> {
    const response = await fetch(`${this.endpoints.apiUrl}${path}`, {
      method,
      headers: body === undefined ? {} : { "content-type": "application/json" },
      body: body === undefined ? null : JSON.stringify(body),
    });
    const text = await response.text();
    return { status: response.status, body: (text ? JSON.parse(text) : undefined) as T };
  }

  /** Creates and attaches a volume, failing the test on any refusal. */
  async createAttachedVolume(name: string, sizeBytes: number): Promise<string> {
    const created = await this.api("POST", "/v1/volumes", { name, sizeBytes });
    if (created.status !== 201) throw new Error(`create ${name}: ${JSON.stringify(created.body)}`);
    const attached = await this.api("POST", `/v1/volumes/${name}/attach`);
    if (attached.status !== 200) throw new Error(`attach ${name}: ${JSON.stringify(attached.body)}`);
    return this.nbdUri(name);
  }

  async destroy(): Promise<void> {
    await this.kill9();
    rmSync(this.root, { recursive: true, force: true });
  }
}
