/** Sizes are exact byte counts held in JS numbers: exact up to 2^53 bytes (8 PiB), far past any volume. */

/** Units as Kubernetes quantities have them: k, M, G, T, P decimal; Ki, Mi, Gi, Ti, Pi binary. */
const UNITS: Record<string, number> = {
  "": 1,
  b: 1,
  k: 1000,
  kb: 1000,
  kib: 1024,
  m: 1000 ** 2,
  mb: 1000 ** 2,
  mib: 1024 ** 2,
  g: 1000 ** 3,
  gb: 1000 ** 3,
  gib: 1024 ** 3,
  t: 1000 ** 4,
  tb: 1000 ** 4,
  tib: 1024 ** 4,
  p: 1000 ** 5,
  pb: 1000 ** 5,
  pib: 1024 ** 5,
};

/**
 * Parses "10GiB", "10Gi", "512M", "1.5TiB", "4096". Single letters are decimal as in Kubernetes
 * quantities (10G = 10×10^9 bytes), "Gi" and "GiB" binary, "GB" decimal. Throws a message naming
 * the bad input.
 */
export function parseSize(text: string): number {
  const match = /^\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*$/.exec(text);
  const unit = match ? UNITS[match[2]!.toLowerCase().replace(/i$/, "ib")] : undefined;
  if (!match || unit === undefined) {
    throw new Error(`invalid size "${text}": use a number with an optional unit, e.g. 10GiB, 512MiB, 4096`);
  }
  const bytes = Number(match[1]) * unit;
  if (!Number.isSafeInteger(bytes)) {
    throw new Error(`invalid size "${text}": not a whole number of bytes, or too large`);
  }
  return bytes;
}

const FORMAT_UNITS = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"] as const;

/** Formats bytes with a binary unit and at most one decimal: 10737418240 → "10 GiB". */
export function formatSize(bytes: number): string {
  let value = bytes;
  let unit = 0;
  while (Math.abs(value) >= 1024 && unit < FORMAT_UNITS.length - 1) {
    value /= 1024;
    unit++;
  }
  const text = Number.isInteger(value) ? String(value) : value.toFixed(1).replace(/\.0$/, "");
  return `${text} ${FORMAT_UNITS[unit]}`;
}

const DURATION_UNITS: Record<string, number> = {
  s: 1000,
  m: 60_000,
  h: 3_600_000,
  d: 86_400_000,
  w: 7 * 86_400_000,
};

/**
 * Parses a whole number and one unit, "30s", "10m", "12h", "7d", "2w", into milliseconds;
 * undefined when the text is not one, so each caller says what it expected in its own words.
 */
export function parseDuration(text: string): number | undefined {
  const match = /^(\d+)([smhdw])$/.exec(text.trim());
  if (match === null) return undefined;
  const ms = Number(match[1]) * DURATION_UNITS[match[2]!]!;
  return Number.isSafeInteger(ms) ? ms : undefined;
}
