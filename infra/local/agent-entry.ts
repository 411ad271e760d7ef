import { existsSync, readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

/**
 * V8 flags every agent process starts with. The agent's heap is small (about 11 MB) while each
 * socket read allocates a fresh 64 KiB buffer; with V8's default old space that churn triggers a
 * full collection every 50–150 ms, 40–45% of a replica server's CPU (docs/benchmarks.md). Old
 * space starting at 64 MiB keeps those collections minor. Node takes the flag only on its command
 * line, so whatever starts an agent passes it.
 */
export const AGENT_NODE_FLAGS: readonly string[] = ["--initial-old-space-size=64"];

/** The built agent, dist/agent.mjs of this package. */
export function findAgentEntry(from = fileURLToPath(import.meta.url)): string {
  return findBuilt(join("dist", "agent.mjs"), "the Strata agent", from);
}

/** A file `npm run build` makes; an error says to build when it is missing. */
export function findBuilt(path: string, what: string, from = fileURLToPath(import.meta.url)): string {
  const entry = join(packageRoot(from), path);
  if (!existsSync(entry))
    throw new Error(`${what} is not built (${entry} is missing): run \`npm run build\``);
  return entry;
}

/**
 * The Strata package's root directory, found by walking up from this module, which is bundled
 * into dist/cli.mjs in normal use but runs from infra/local/ under tsx.
 */
export function packageRoot(from = fileURLToPath(import.meta.url)): string {
  for (let dir = dirname(from); ; dir = dirname(dir)) {
    if (isStrataPackage(dir)) return dir;
    if (dirname(dir) === dir) throw new Error(`cannot find the Strata package root above ${from}`);
  }
}

function isStrataPackage(dir: string): boolean {
  try {
    const manifest = JSON.parse(readFileSync(join(dir, "package.json"), "utf8")) as { name?: unknown };
    return manifest.name === "strata";
  } catch {
    return false;
  }
}
