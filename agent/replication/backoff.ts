/** Retry delays for a store that cannot be reached: quick at first, then at most every few seconds. */
export const FIRST_RETRY_MS = 100;
/** A store outage can last minutes; polling faster than this only adds load once it is back. */
export const MAX_RETRY_MS = 3000;

export function nextDelay(previousMs: number | undefined, maxMs = MAX_RETRY_MS): number {
  return previousMs === undefined ? FIRST_RETRY_MS : Math.min(previousMs * 2, maxMs);
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
