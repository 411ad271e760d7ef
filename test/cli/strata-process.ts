import { type ChildProcess, execFile, spawn } from "node:child_process";
import { mkdtemp, readdir, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { ClusterFile } from "../../infra/local/cluster-file.js";

/** Drives the real `strata` binary (bin/strata.mjs → dist/cli.mjs) as a user would. */

export const PACKAGE_ROOT = fileURLToPath(new URL("../..", import.meta.url));
const STRATA_BIN = join(PACKAGE_ROOT, "bin", "strata.mjs");

export interface Outcome {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs one CLI command to completion; never throws for a non-zero exit (tests look at `code`). */
export function strata(args: string[], env: Record<string, string> = {}): Promise<Outcome> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [STRATA_BIN, ...args],
      { env: { ...process.env, ...env }, cwd: PACKAGE_ROOT },
      (error, stdout, stderr) => {
        const code = error ? (typeof error.code === "number" ? error.code : -1) : 0;
        resolve({ code, stdout, stderr });
      },
    );
  });
}

/**
 * Short, so a killed node shows down quickly (still several heartbeats, 2 s, long), coordinators
 * checkpoint soon after writes stop (a resync counts changes from a checkpoint), and a node
 * deletes replicas no volume lists within seconds (longer than any create takes: a replica exists
 * before its record lists it).
 */
export const FAST_RECOVERY_ENV = {
  STRATA_HEARTBEAT_TIMEOUT_MS: "6000",
  STRATA_CHECKPOINT_INTERVAL_MS: "2000",
  STRATA_ORPHAN_GRACE_MS: "15000",
};

/**
 * The CLI against the cluster in `dir()`: `cli` returns the outcome; `json` returns the parsed
 * `--json` answer, or fails with the command's stderr and the agents' last errors, so a failure in
 * CI says what went wrong inside the cluster.
 */
export function clusterCli(dir: () => string, env: Record<string, string> = {}) {
  const cli = (...args: string[]) => strata(["--dir", dir(), ...args], env);
  const json = async <T>(...args: string[]): Promise<T> => {
    const outcome = await cli("--json", ...args);
    if (outcome.code !== 0) {
      throw new Error(
        `strata ${args.join(" ")}: ${outcome.stderr}agent errors:\n${await agentErrors(dir())}`,
      );
    }
    return JSON.parse(outcome.stdout) as T;
  };
  return { cli, json };
}

/** The last warnings and errors each agent of the cluster in `dir` logged. */
async function agentErrors(dir: string): Promise<string> {
  const nodes = await readdir(join(dir, "nodes")).catch(() => []);
  const lines: string[] = [];
  for (const node of nodes.sort()) {
    const text = await readFile(join(dir, "nodes", node, "agent.log"), "utf8").catch(() => "");
    lines.push(
      ...text
        .split("\n")
        .filter((line) => /"level":(40|50|60)/.test(line))
        .slice(-5),
    );
  }
  return lines.join("\n");
}

/** A `strata cluster up` running in the foreground, with everything it printed so far. */
export interface RunningCluster {
  process: ChildProcess;
  output(): string;
  file: ClusterFile;
  /** Resolves with the exit code (or the signal name) once the supervisor has exited. */
  exited: Promise<number | string>;
}

/** Starts `cluster up` on free ports and waits until it has printed its getting-started text. */
export async function clusterUp(dir: string, extraArgs: string[] = []): Promise<RunningCluster> {
  const child = spawn(
    process.execPath,
    [
      STRATA_BIN,
      "cluster",
      "up",
      "--dir",
      dir,
      "--nbd-port",
      "0",
      "--api-port",
      "0",
      "--replication-port",
      "0",
      ...extraArgs,
    ],
    { cwd: PACKAGE_ROOT, stdio: ["ignore", "pipe", "pipe"] },
  );
  let output = "";
  child.stdout.on("data", (chunk: Buffer) => {
    output += chunk.toString("utf8");
  });
  child.stderr.on("data", (chunk: Buffer) => {
    output += chunk.toString("utf8");
  });
  const exited = new Promise<number | string>((resolve) =>
    child.once("exit", (code, signal) => resolve(code ?? signal ?? -1)),
  );
  let gone = false;
  void exited.then(() => {
    gone = true;
  });
  while (!output.includes("Press Ctrl-C")) {
    if (gone) throw new Error(`strata cluster up exited before it was ready:\n${output}`);
    await sleep(100);
  }
  const file = await readCluster(dir);
  if (!file || file.pid !== child.pid)
    throw new Error(`cluster.json does not name the supervisor:\n${output}`);
  return { process: child, output: () => output, file, exited };
}

export async function readCluster(dir: string): Promise<ClusterFile | undefined> {
  try {
    return ClusterFile.parse(JSON.parse(await readFile(join(dir, "cluster.json"), "utf8")));
  } catch {
    return undefined;
  }
}

/** A failing command must say what is wrong in one line on stderr, and nothing on stdout. */
export function oneSentence(outcome: Outcome): string {
  const lines = outcome.stderr.trimEnd().split("\n");
  if (lines.length !== 1 || !lines[0]!.startsWith("error: ") || outcome.stdout !== "") {
    throw new Error(
      `expected one error line, got stdout=${JSON.stringify(outcome.stdout)} stderr=${JSON.stringify(outcome.stderr)}`,
    );
  }
  return lines[0]!.slice("error: ".length);
}

/** Rebuilds the bundles (the tests run what the sources say now) and makes a scratch cluster dir. */
export async function prepareClusterDir(prefix: string): Promise<string> {
  await promisify(execFile)(process.execPath, ["scripts/build.mjs"], { cwd: PACKAGE_ROOT });
  return mkdtemp(join(tmpdir(), prefix));
}

/** Stops a cluster still running (Ctrl-C, as a user would) and removes its dir. */
export async function tearDownCluster(
  dir: string | undefined,
  cluster: RunningCluster | undefined,
): Promise<void> {
  if (cluster && cluster.process.exitCode === null) {
    cluster.process.kill("SIGINT");
    await cluster.exited;
  }
  if (dir) await rm(dir, { recursive: true, force: true });
}
