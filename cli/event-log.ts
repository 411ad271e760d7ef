import { open } from "node:fs/promises";
import { setTimeout as sleep } from "node:timers/promises";
import type { BusEvent } from "./event-views.js";

/**
 * `<dir>/events.jsonl`, the local bus's log: one EventBridge envelope per line, appended as events
 * are put. Read from where the last read stopped; a line still being written waits for its newline.
 */
export class EventLog {
  private offset = 0;
  private partial = "";

  constructor(private readonly path: string) {}

  /** The events appended since the last read; none while the file does not exist. */
  async readNew(): Promise<BusEvent[]> {
    let file: Awaited<ReturnType<typeof open>>;
    try {
      file = await open(this.path, "r");
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === "ENOENT") return [];
      throw error;
    }
    try {
      const { size } = await file.stat();
      if (size < this.offset) {
        // A new cluster in the same directory started the log again.
        this.offset = 0;
        this.partial = "";
      }
      if (size === this.offset) return [];
      const buffer = Buffer.alloc(size - this.offset);
      const { bytesRead } = await file.read(buffer, 0, buffer.length, this.offset);
      this.offset += bytesRead;
      const text = this.partial + buffer.subarray(0, bytesRead).toString("utf8");
      const lines = text.split("\n");
      this.partial = lines.pop() ?? "";
      return lines.flatMap(parseLine);
    } finally {
      await file.close();
    }
  }

  /**
   * Calls `onEvents` with what is appended, checking every `intervalMs`, until `signal` aborts.
   * Resolves then, without throwing: stopping is how following ends.
   */
  async follow(onEvents: (events: BusEvent[]) => void, signal: AbortSignal, intervalMs = 500): Promise<void> {
    while (!signal.aborted) {
      try {
        await sleep(intervalMs, undefined, { signal });
      } catch {
        return;
      }
      const events = await this.readNew();
      if (events.length > 0 && !signal.aborted) onEvents(events);
    }
  }
}

/** A line that is not a JSON object (a torn write after a crash) is skipped, not fatal. */
function parseLine(line: string): BusEvent[] {
  if (line.trim() === "") return [];
  try {
    const parsed: unknown = JSON.parse(line);
    return parsed !== null && typeof parsed === "object" && !Array.isArray(parsed)
      ? [parsed as BusEvent]
      : [];
  } catch {
    return [];
  }
}
