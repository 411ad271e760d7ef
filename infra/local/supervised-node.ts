import type { AgentRun } from "./agent-run.js";
import type { NodeSpec } from "./node-spec.js";

/** Restart delays grow 1 s, 2 s, 4 s ... up to 30 s, so a crash loop does not spin the machine. */
const FIRST_RESTART_DELAY_MS = 1_000;
const MAX_RESTART_DELAY_MS = 30_000;
/** An agent that stayed up this long is considered healthy again: the next crash restarts at 1 s. */
const STABLE_AFTER_MS = 60_000;
export const STOP_GRACE_MS = 10_000;

/** Starts one agent for a spec and resolves once it is ready (serving, and registered). */
export type Launcher = (spec: NodeSpec) => Promise<AgentRun>;

/**
 * What the supervisor says about one node's process: running; starting (first start, operator start,
 * or a restart under way); restarting (crashed, waiting for the next attempt); stopped (by the operator).
 */
export type ProcessState = "running" | "starting" | "restarting" | "stopped";

export interface NodeEvents {
  /** One concise line for the terminal. */
  report(line: string): void;
  /** A restarted agent is serving again (its endpoints may be needed again in cluster.json). */
  restarted(node: SupervisedNode): void;
}

/**
 * Keeps one agent running: starts it, and when it dies without being asked to, says so and starts
 * it again with backoff. A storage node that is down leaves its volumes unreachable, so the
 * supervisor never gives up on it while it runs, except when the operator stopped it (`halt`): then
 * it stays down until `resume`.
 */
export class SupervisedNode {
  private run: AgentRun | undefined;
  /** The last agent that served: its endpoints stay known while the node is stopped. */
  private lastRun: AgentRun | undefined;
  private stopping = false;
  private halted = false;
  private failures = 0;
  private restartTimer: NodeJS.Timeout | undefined;
  /** A start or restart under way, which stop() must wait for so that no agent is left behind. */
  private launching: Promise<void> | undefined;

  constructor(
    readonly spec: NodeSpec,
    private readonly launcher: Launcher,
    private readonly events: NodeEvents,
  ) {}

  /** The agent serving now, or the last one that did; throws before the first start. */
  get current(): AgentRun {
    const run = this.run ?? this.lastRun;
    if (!run) throw new Error(`${this.spec.id} has never started`);
    return run;
  }

  get state(): ProcessState {
    if (this.launching) return "starting";
    if (this.halted) return "stopped";
    return this.run ? "running" : "restarting";
  }

  /** The pid of the live agent, if there is one. */
  get pid(): number | null {
    return this.run?.pid ?? null;
  }

  /** The first start: a failure here is the caller's to report (nothing is restarted yet). */
  async start(): Promise<void> {
    await this.launch();
  }

  /** Shuts the node down for good (the cluster is stopping). */
  async stop(graceMs = STOP_GRACE_MS): Promise<void> {
    this.stopping = true;
    await this.halt({ kill: false, graceMs });
  }

  /**
   * The operator stops this node: cleanly (SIGTERM, SIGKILL after `graceMs`), or with `kill` as a
   * crash would (SIGKILL). Either way it is not restarted until `resume`.
   */
  async halt(options: { kill: boolean; graceMs?: number }): Promise<void> {
    this.halted = true;
    clearTimeout(this.restartTimer);
    await this.launching?.catch(() => {});
    const run = this.run;
    if (!run) return;
    if (options.kill) await run.kill();
    else await run.stop(options.graceMs ?? STOP_GRACE_MS);
    this.run = undefined;
  }

  /** The operator starts a stopped node again; resolves once it is ready. A running node is left as is. */
  async resume(): Promise<void> {
    if (this.stopping) throw new Error(`${this.spec.id}: the cluster is stopping`);
    if (this.launching) return this.launching;
    if (this.run) return;
    this.halted = false;
    this.failures = 0;
    clearTimeout(this.restartTimer);
    await this.launch();
  }

  private launch(): Promise<void> {
    this.launching = this.launchOnce().finally(() => {
      this.launching = undefined;
    });
    return this.launching;
  }

  private async launchOnce(): Promise<void> {
    const run = await this.launcher(this.spec);
    this.run = run;
    this.lastRun = run;
    // Keep the endpoints stable across restarts even when the first start picked free ports.
    this.spec.api.port = portOf(new URL(run.info.apiUrl).port);
    this.spec.nbd.port = portOf(run.info.nbdAddress.slice(run.info.nbdAddress.lastIndexOf(":") + 1));
    void run.exited.then((how) => this.onExit(run, how));
  }

  private onExit(run: AgentRun, how: string): void {
    if (run !== this.run) return;
    this.run = undefined;
    if (this.stopping || this.halted) return;
    if (Date.now() - run.startedAt >= STABLE_AFTER_MS) this.failures = 0;
    this.scheduleRestart(`agent (pid ${run.pid}) stopped unexpectedly (${how})`);
  }

  private scheduleRestart(what: string): void {
    const delay = Math.min(FIRST_RESTART_DELAY_MS * 2 ** this.failures, MAX_RESTART_DELAY_MS);
    this.failures++;
    this.events.report(
      `${this.spec.id}: ${what}; restarting in ${delay / 1000} s (log: ${this.spec.dataDir}/agent.log)`,
    );
    this.restartTimer = setTimeout(() => void this.restart(), delay);
  }

  private async restart(): Promise<void> {
    if (this.stopping || this.halted) return;
    try {
      await this.launch();
    } catch (error) {
      if (!this.stopping && !this.halted) this.scheduleRestart(`restart failed: ${(error as Error).message}`);
      return;
    }
    if (this.stopping || this.halted) return;
    this.events.report(
      `${this.spec.id}: agent restarted (pid ${this.current.pid}), serving its volumes again`,
    );
    this.events.restarted(this);
  }
}

function portOf(text: string): number {
  const port = Number(text);
  if (!Number.isInteger(port) || port <= 0) throw new Error(`the agent reported an invalid port "${text}"`);
  return port;
}
