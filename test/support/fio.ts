import { execFile } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";

const execFileAsync = promisify(execFile);

export interface FioJobResult {
  error: number;
  read: { io_bytes: number; bw_bytes: number; iops: number };
  write: { io_bytes: number; bw_bytes: number; iops: number };
}

/**
 * Runs one fio job against an NBD URI and returns its JSON result. fio runs in a scratch directory
 * (it drops state files into its working directory) and a failing job fails with fio's own words.
 */
export async function fio(uri: string, options: string[]): Promise<FioJobResult> {
  const scratch = await mkdtemp(join(tmpdir(), "strata-fio-"));
  try {
    const { stdout } = await execFileAsync(
      "fio",
      ["--name=job", "--ioengine=nbd", `--uri=${uri}`, "--output-format=json", ...options],
      { cwd: scratch, maxBuffer: 16 * 1024 * 1024, timeout: 300_000 },
    ).catch((error: { stderr?: string; stdout?: string; message: string }) => {
      throw new Error(
        `fio ${options.join(" ")} on ${uri} failed: ${error.stderr || error.stdout || error.message}`,
      );
    });
    return (JSON.parse(stdout.slice(stdout.indexOf("{"))) as { jobs: FioJobResult[] }).jobs[0]!;
  } finally {
    await rm(scratch, { recursive: true, force: true });
  }
}

/** 4 KiB random writes at iodepth 32 over `size`, then fio reads everything back and checks crc32c. */
export function fioVerifiedRandomWrites(uri: string, size: string): Promise<FioJobResult> {
  return fio(uri, [
    "--rw=randwrite",
    "--bs=4k",
    "--iodepth=32",
    `--size=${size}`,
    "--verify=crc32c",
    "--verify_fatal=1",
    "--do_verify=1",
  ]);
}
