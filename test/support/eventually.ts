import { setTimeout as sleep } from "node:timers/promises";

/** Retries `probe` until it returns true; for state that settles asynchronously (an agent restart). */
export async function eventually(
  probe: () => Promise<boolean>,
  what: string,
  timeoutMs = 60_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await probe())) {
    if (Date.now() > deadline) throw new Error(`gave up waiting: ${what}`);
    await sleep(200);
  }
}
