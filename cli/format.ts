import type { Labels } from "../core/model.js";
import { formatSize } from "../core/units.js";

export { formatSize };

/**
 * A relative age like kubectl's: "45s", "3m12s", "17m", "5h20m", "30h", "4d6h", "12d", "3y".
 * Clock skew between the agent and this machine can make `since` a little in the future: "0s".
 */
export function formatAge(since: string | Date, now: number = Date.now()): string {
  return formatDuration(now - new Date(since).getTime());
}

/** A duration the way formatAge reads: "45s", "3m12s", "5h20m". */
export function formatDuration(milliseconds: number): string {
  const seconds = Math.max(0, Math.floor(milliseconds / 1000));
  const minutes = Math.floor(seconds / 60);
  const hours = Math.floor(minutes / 60);
  const days = Math.floor(hours / 24);
  if (seconds < 120) return `${seconds}s`;
  if (minutes < 10) return withRest(minutes, "m", seconds % 60, "s");
  if (hours < 3) return `${minutes}m`;
  if (hours < 8) return withRest(hours, "h", minutes % 60, "m");
  if (hours < 48) return `${hours}h`;
  if (days < 8) return withRest(days, "d", hours % 24, "h");
  if (days < 365 * 2) return `${days}d`;
  return `${Math.floor(days / 365)}y`;
}

const withRest = (major: number, unit: string, rest: number, restUnit: string) =>
  rest === 0 ? `${major}${unit}` : `${major}${unit}${rest}${restUnit}`;

/** "app=db,tier=gold", or "<none>" like kubectl. */
export function formatLabels(labels: Labels): string {
  const pairs = Object.entries(labels).map(([key, value]) => `${key}=${value}`);
  return pairs.length === 0 ? "<none>" : pairs.join(",");
}

export const orNone = (value: string | null | undefined) => value ?? "<none>";
