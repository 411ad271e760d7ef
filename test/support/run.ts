import { execFile } from "node:child_process";
import { promisify } from "node:util";

const execFileAsync = promisify(execFile);

/** Runs an external client; a non-zero exit fails with its stderr so the test says what went wrong. */
export async function run(command: string, args: string[], timeoutMs = 300_000): Promise<string> {
  try {
    const { stdout } = await execFileAsync(command, args, {
      maxBuffer: 64 * 1024 * 1024,
      timeout: timeoutMs,
    });
    return stdout;
  } catch (error) {
    const failure = error as { stderr?: string; stdout?: string; message: string };
    throw new Error(
      `${command} ${args.join(" ")} failed: ${failure.stderr || failure.stdout || failure.message}`,
    );
  }
}
