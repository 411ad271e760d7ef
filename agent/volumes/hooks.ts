import { execFile } from "node:child_process";
import { promisify } from "node:util";

const execFileAsync = promisify(execFile);

/**
 * A hook may take this long: enough to flush a database's buffers (CHECKPOINT) or freeze a
 * filesystem, short enough that the volumes' I/O is not held up for long by a hung one.
 */
export const HOOK_TIMEOUT_MS = 60_000;

/** Commands run around a group's snapshot, e.g. to flush and pause a database, then resume it. */
export interface SnapshotHooks {
  /** Run before the snapshot; if it fails, nothing is snapshotted (the post hook still runs). */
  pre?: string;
  /** Run after the snapshot, also when the pre hook or the snapshot failed. */
  post?: string;
}

/**
 * Runs `work` between the hooks. The commands run with `sh -c` as the agent's user on the node that
 * takes the snapshot: whoever may start operations may run them, as with Portworx's rules or
 * Velero's hooks. A failure says which hook, its exit and the last line it printed.
 */
export async function betweenHooks<T>(hooks: SnapshotHooks, work: () => Promise<T>): Promise<T> {
  let result: T;
  try {
    if (hooks.pre !== undefined) await runHook("pre", hooks.pre);
    result = await work();
  } catch (error) {
    if (hooks.post !== undefined) await runHook("post", hooks.post).catch(() => undefined);
    throw error;
  }
  if (hooks.post !== undefined) await runHook("post", hooks.post);
  return result;
}

async function runHook(which: "pre" | "post", command: string): Promise<void> {
  try {
    await execFileAsync("sh", ["-c", command], { timeout: HOOK_TIMEOUT_MS, maxBuffer: 1024 * 1024 });
  } catch (error) {
    const failed = error as { code?: number | string; killed?: boolean; stderr?: string; stdout?: string };
    const said = `${failed.stderr ?? ""}${failed.stdout ?? ""}`.trim().split("\n").at(-1) ?? "";
    const how =
      failed.killed === true ? `was stopped after ${HOOK_TIMEOUT_MS / 1000} s` : `exited with ${failed.code}`;
    throw new Error(`the ${which} hook \`${command}\` ${how}${said === "" ? "" : `: ${said}`}`);
  }
}
