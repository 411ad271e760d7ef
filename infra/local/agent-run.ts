import { type ChildProcess, spawn } from "node:child_process";
import { mkdir, open, readFile, rm } from "node:fs/promises";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { ControlClient } from "../../core/control-client.js";
import { AGENT_NODE_FLAGS } from "./agent-entry.js";
import { type AgentFile, agentFilePath, readAgentFile } from "./agent-file.js";
import { agentArguments, type NodeSpec } from "./node-spec.js";
import { exitOf, stopChild } from "./processes.js";

/** A slow, shared machine can take a while to load a pool with many volumes. */
const READY_TIMEOUT_MS = 60_000;
const POLL_MS = 100;
export const AGENT_LOG = "agent.log";

/** One life of an agent process, from spawn to exit. A restart is a new AgentRun. */
export interface AgentRun {
  readonly pid: number;
  readonly info: AgentFile;
  readonly startedAt: number;
  /** Resolves when the process has exited, with a description such as "exit code 1" or "signal SIGKILL". */
  readonly exited: Promise<string>;
  /** SIGTERM, then SIGKILL after `graceMs`; resolves once the process is gone. */
  stop(graceMs: number): Promise<void>;
  /** SIGKILL at once, like a crash: no flush, no goodbye to the state store. */
  kill(): Promise<void>;
}

/**
 * Starts the agent for `spec` and resolves once it is serving: it has written its agent.json and
 * answers /healthz. Its stdout and stderr go to <data-dir>/agent.log. The IPC channel is how the
 * agent notices that its supervisor died (it exits on disconnect).
 */
export async function launchAgent(
  spec: NodeSpec,
  agentEntry: string,
  environment: Record<string, string>,
): Promise<AgentRun> {
  await mkdir(spec.dataDir, { recursive: true });
  // A leftover agent.json from an earlier run must not be mistaken for this run's readiness.
  await rm(agentFilePath(spec.dataDir), { force: true });

  const logPath = join(spec.dataDir, AGENT_LOG);
  const logFile = await open(logPath, "a");
  let child: ChildProcess;
  try {
    child = spawn(process.execPath, [...AGENT_NODE_FLAGS, agentEntry, ...agentArguments(spec)], {
      stdio: ["ignore", logFile.fd, logFile.fd, "ipc"],
      // Own process group: a Ctrl-C in the terminal reaches the supervisor only, which then stops
      // the agents in order instead of racing them.
      detached: true,
      env: { ...process.env, ...environment, STRATA_NODE_ID: spec.id },
    });
  } finally {
    await logFile.close();
  }

  const exited = exitOf(child);
  const pid = child.pid;
  if (pid === undefined) throw new Error(`${spec.id}: could not start the agent: ${await exited}`);

  const stop = (graceMs: number) => stopChild(child, exited, graceMs);

  const kill = async () => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    child.kill("SIGKILL");
    await exited;
  };

  // Whichever of ready / exited / timed out comes first, the other waits are called off.
  const settled = new AbortController();
  const outcome = await Promise.race([
    waitUntilServing(spec, pid, settled.signal),
    exited.then((how) => ({ exitedWith: how })),
    sleep(READY_TIMEOUT_MS, undefined, { signal: settled.signal }).then(
      () => ({ timedOut: true as const }),
      () => ({ timedOut: true as const }),
    ),
  ]).finally(() => settled.abort());
  if ("exitedWith" in outcome) {
    const why = await lastWords(logPath);
    throw new Error(
      `${spec.id}: the agent stopped before it was ready (${outcome.exitedWith})${why ? `: ${why}` : ""}; see ${logPath}`,
    );
  }
  if ("timedOut" in outcome) {
    await stop(5_000);
    throw new Error(`${spec.id}: the agent was not ready after ${READY_TIMEOUT_MS / 1000} s; see ${logPath}`);
  }
  return { pid, info: outcome, startedAt: Date.now(), exited, stop, kill };
}

async function waitUntilServing(spec: NodeSpec, pid: number, cancel: AbortSignal): Promise<AgentFile> {
  while (!cancel.aborted) {
    const info = await readAgentFile(spec.dataDir);
    if (info?.pid === pid) {
      try {
        await new ControlClient(info.apiUrl).health();
        return info;
      } catch {
        // Listening but not answering yet: keep polling.
      }
    }
    await sleep(POLL_MS);
  }
  // Only reached once another outcome has won the race, which has already handled this rejection.
  throw new Error("readiness wait cancelled");
}

/**
 * Why the agent gave up, from the end of its log: its own last words on stderr ("strata-agent: ..."),
 * else the message of its last error-level log line. Saves sending the user to the file.
 */
export async function lastWords(path: string): Promise<string | undefined> {
  let lines: string[];
  try {
    lines = (await readFile(path, "utf8")).trimEnd().split("\n").slice(-50).reverse();
  } catch {
    return undefined;
  }
  const said = lines.find((line) => line.startsWith(AGENT_STDERR_PREFIX));
  if (said) return said.slice(AGENT_STDERR_PREFIX.length);
  for (const line of lines) {
    const entry = parseLogLine(line);
    if (entry && entry.level >= PINO_ERROR) return entry.msg;
  }
  return undefined;
}

const AGENT_STDERR_PREFIX = "strata-agent: ";
const PINO_ERROR = 50;

function parseLogLine(line: string): { level: number; msg: string } | undefined {
  try {
    const entry = JSON.parse(line) as { level?: unknown; msg?: unknown };
    return typeof entry.level === "number" && typeof entry.msg === "string"
      ? { level: entry.level, msg: entry.msg }
      : undefined;
  } catch {
    return undefined;
  }
}
