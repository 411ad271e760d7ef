/**
 * Durations an operator (or a test, or the demo) may shorten through the environment. Each has a
 * default chosen for production; a value that is not a positive whole number is ignored.
 */

/** `env[name]` as a positive whole number of milliseconds, else `fallback`. */
export function millisecondsFromEnv(
  name: string,
  fallback: number,
  env: NodeJS.ProcessEnv = process.env,
): number {
  const configured = Number(env[name]);
  return Number.isInteger(configured) && configured > 0 ? configured : fallback;
}
