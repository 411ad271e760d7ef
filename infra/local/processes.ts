import type { ChildProcess } from "node:child_process";
import { readFile } from "node:fs/promises";
import { setTimeout as sleep } from "node:timers/promises";

/** True when a process with this pid exists (EPERM: it exists but belongs to someone else). */
export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === "EPERM";
  }
}

/**
 * The command line of a live process, or undefined where /proc is not available. Used to make sure
 * a pid read from a file still names the process that wrote it, not an unrelated one that reused it.
 */
export async function commandLine(pid: number): Promise<string[] | undefined> {
  try {
    const raw = await readFile(`/proc/${pid}/cmdline`, "utf8");
    return raw.split("\0").filter((arg) => arg !== "");
  } catch {
    return undefined;
  }
}

/** Waits for a pid to disappear; false if it is still there after `timeoutMs`. */
export async function waitForExit(pid: number, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (isAlive(pid)) {
    if (Date.now() >= deadline) return false;
    await sleep(100);
  }
  return true;
}

/** SIGTERM, then SIGKILL if the process has not exited after `graceMs`. */
export async function terminate(pid: number, graceMs: number): Promise<"exited" | "killed"> {
  signal(pid, "SIGTERM");
  if (await waitForExit(pid, graceMs)) return "exited";
  signal(pid, "SIGKILL");
  await waitForExit(pid, graceMs);
  return "killed";
}

/** Resolves once `child` has exited, with e.g. "exit code 1" or "signal SIGKILL". */
export function exitOf(child: ChildProcess): Promise<string> {
  return new Promise<string>((resolve) => {
    child.once("exit", (code, signal) => resolve(signal ? `signal ${signal}` : `exit code ${code}`));
    child.once("error", (error) => resolve(`spawn failure: ${error.message}`));
  });
}

/** SIGTERM to a child process, SIGKILL if it is still there after `graceMs`; resolves once it is gone. */
export async function stopChild(
  child: ChildProcess,
  exited: Promise<unknown>,
  graceMs: number,
): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null || child.pid === undefined) return;
  child.kill("SIGTERM");
  if (!(await waitForExit(child.pid, graceMs))) child.kill("SIGKILL");
  await exited;
}

function signal(pid: number, name: NodeJS.Signals): void {
  try {
    process.kill(pid, name);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== "ESRCH") throw error;
  }
}
