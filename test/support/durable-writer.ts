import { type ChildProcess, spawn } from "node:child_process";

/** Write i's byte pattern: never 0, so a lost write cannot pass as zeros. */
const patternOf = (i: number) => (i % 255) + 1;

/**
 * qemu-io issuing numbered FUA writes of distinct patterns, one at a time: each "wrote" line it
 * prints is a write acknowledged as durable. Its output is line buffered (stdbuf -oL), so a line
 * reaches this process as the write is acknowledged, not in 4 KiB bursts later: `acknowledged` is
 * what the server has acknowledged so far, give or take the write in flight. Tests kill or fence
 * servers under it, then check every acknowledged write; refused writes ("write failed: ...", on
 * either stream) are kept too.
 */
export class DurableWriter {
  /** Indices of the writes acknowledged so far, in order. */
  readonly acknowledged: number[] = [];
  /** The error lines of refused writes. */
  readonly refusals: string[] = [];
  readonly exited: Promise<void>;
  private readonly process: ChildProcess;
  private waiters: { count: number; resolve: () => void }[] = [];
  private done = false;

  constructor(
    uri: string,
    readonly writes: number,
    readonly writeSize = 64 * 1024,
  ) {
    const commands = Array.from({ length: writes }, (_, i) => [
      "-c",
      `write -f -P ${patternOf(i)} ${i * writeSize} ${writeSize}`,
    ]).flat();
    this.process = spawn("stdbuf", ["-oL", "-eL", "qemu-io", "-f", "raw", uri, ...commands], {
      stdio: ["ignore", "pipe", "pipe"],
    });
    // Listened for from the start: qemu-io may exit before the test has finished killing its server.
    this.exited = new Promise((resolve) =>
      this.process.once("exit", () => {
        this.done = true;
        resolve();
      }),
    );
    const lines = (stream: NodeJS.ReadableStream, onLine: (line: string) => void) => {
      let pending = "";
      stream.on("data", (chunk: Buffer) => {
        pending += chunk.toString();
        const complete = pending.split("\n");
        pending = complete.pop()!;
        for (const line of complete) onLine(line);
      });
    };
    const refused = (line: string) => {
      if (/^write failed/.test(line)) this.refusals.push(line);
    };
    lines(this.process.stdout!, (line) => {
      refused(line);
      const match = /^wrote \d+\/\d+ bytes at offset (\d+)/.exec(line);
      if (match) this.acknowledged.push(Number(match[1]) / writeSize);
      this.waiters = this.waiters.filter((waiter) => {
        if (this.acknowledged.length < waiter.count) return true;
        waiter.resolve();
        return false;
      });
    });
    lines(this.process.stderr!, refused);
  }

  /** True once qemu-io has exited. */
  get finished(): boolean {
    return this.done;
  }

  /** Resolves once `count` writes have been acknowledged. */
  reached(count: number): Promise<void> {
    if (this.acknowledged.length >= count) return Promise.resolve();
    return new Promise((resolve) => this.waiters.push({ count, resolve }));
  }

  /** qemu-io commands that check every acknowledged write's pattern. */
  verifyCommands(): string[] {
    return this.acknowledged.flatMap((i) => [
      "-c",
      `read -P ${patternOf(i)} ${i * this.writeSize} ${this.writeSize}`,
    ]);
  }

  /** Stops qemu-io if it still runs (cleanup after a failed test). */
  stop(): void {
    if (!this.done) this.process.kill("SIGKILL");
  }
}
