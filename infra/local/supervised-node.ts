import { type AgentRun, launchAgent } from "./agent-run.js";
import type { NodeSpec } from "./node-spec.js";

/** Restart delays grow 1 s, 2 s, 4 s ... up to 30 s, so a crash loop does not spin the machine. */
const FIRST_RESTART_DELAY_MS = 1_000;
const MAX_RESTART_DELAY_MS = 30_000;
/** An agent that stayed up this long is considered healthy again: the next crash restarts at 1 s. */
const STABLE_AFTER_MS = 60_000;
export const STOP_GRACE_MS = 10_000;

export interface NodeEvents {
  /** One concise line for the terminal. */
  report(line: string): void;
  /** A restarted agent is serving again (its endpoints may be needed again in cluster.json). */
  restarted(node: SupervisedNode): void;
}

/**
 * Keeps one agent running: starts it, and when it dies without being asked to, says so and starts
 * it again with backoff. A storage node that is down leaves its volumes unreachable, so the
 * supervisor never gives up on it while it runs.
 */
export class SupervisedNode {
  private run: AgentRun | undefined;
  private stopping = false;
  private failures = 0;
  private restartTimer: NodeJS.Timeout | undefined;
  /** A start or restart under way, which stop() must wait for so that no agent is left behind. */
  private launching: Promise<void> | undefined;

  constructor(
    readonly spec: NodeSpec,
    private readonly agentEntry: string,
    private readonly events: NodeEvents,
  ) {}

  get current(): AgentRun {
    if (!this.run) throw new Error(`${this.spec.id} has no running agent`);
    return this.run;
  }

  /** The first start: a failure here is the caller's to report (nothing is restarted yet). */
  async start(): Promise<void> {
    await this.launch();
  }

  async stop(graceMs = STOP_GRACE_MS): Promise<void> {
    this.stopping = true;
    clearTimeout(this.restartTimer);
    await this.launching?.catch(() => {});
    await this.run?.stop(graceMs);
  }

  private launch(): Promise<void> {
    this.launching = this.launchOnce().finally(() => {
      this.launching = undefined;
    });
    return this.launching;
  }

  private async launchOnce(): Promise<void> {
    const run = await launchAgent(this.spec, this.agentEntry);
    this.run = run;
    // Keep the endpoints stable across restarts even when the first start picked free ports.
    this.spec.api.port = portOf(new URL(run.info.apiUrl).port);
    this.spec.nbd.port = portOf(run.info.nbdAddress.slice(run.info.nbdAddress.lastIndexOf(":") + 1));
    void run.exited.then((how) => this.onExit(run, how));
  }

  private onExit(run: AgentRun, how: string): void {
    if (this.stopping || run !== this.run) return;
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
    if (this.stopping) return;
    try {
      await this.launch();
    } catch (error) {
      if (!this.stopping) this.scheduleRestart(`restart failed: ${(error as Error).message}`);
      return;
    }
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
