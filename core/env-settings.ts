/**
 * Settings an operator (or a test, or the demo) may change through the environment. Each has a
 * default chosen for production; a value of the wrong form is ignored.
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

/** `env[name]` trimmed, else `fallback` when it is unset or blank. */
export function textFromEnv(name: string, fallback: string, env: NodeJS.ProcessEnv = process.env): string {
  const configured = env[name]?.trim();
  return configured === undefined || configured === "" ? fallback : configured;
}
