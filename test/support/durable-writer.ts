import { type ChildProcess, spawn } from "node:child_process";

/** Write i's byte pattern: never 0, so a lost write cannot pass as zeros. */
const patternOf = (i: number) => (i % 255) + 1;

/**
 * qemu-io issuing numbered FUA writes of distinct patterns: each "wrote" line it prints is a write
 * acknowledged as durable. Tests kill servers under it, then check every acknowledged write.
 */
export class DurableWriter {
  /** Indices of the writes acknowledged so far, in order. */
  readonly acknowledged: number[] = [];
  readonly exited: Promise<void>;
  private readonly process: ChildProcess;
  private waiters: { count: number; resolve: () => void }[] = [];

  constructor(
    uri: string,
    writes: number,
    private readonly writeSize = 64 * 1024,
  ) {
    const commands = Array.from({ length: writes }, (_, i) => [
      "-c",
      `write -f -P ${patternOf(i)} ${i * writeSize} ${writeSize}`,
    ]).flat();
    this.process = spawn("qemu-io", ["-f", "raw", uri, ...commands], { stdio: ["ignore", "pipe", "ignore"] });
    // Listened for from the start: qemu-io may exit before the test has finished killing its server.
    this.exited = new Promise((resolve) => this.process.once("exit", () => resolve()));
    let pending = "";
    this.process.stdout!.on("data", (chunk: Buffer) => {
      pending += chunk.toString();
      const lines = pending.split("\n");
      pending = lines.pop()!;
      for (const line of lines) {
        const match = /^wrote \d+\/\d+ bytes at offset (\d+)/.exec(line);
        if (match) this.acknowledged.push(Number(match[1]) / writeSize);
      }
      this.waiters = this.waiters.filter((waiter) => {
        if (this.acknowledged.length < waiter.count) return true;
        waiter.resolve();
        return false;
      });
    });
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
}
