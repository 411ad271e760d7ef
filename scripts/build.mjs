// Bundles the agent, the CLI, the local S3 server's process and every Lambda into dist/ so `npx strata`, the agent processes and
// the local cloud run plain JS. dist/functions/<name>.mjs is what the local cloud loads in-process:
// the same handler, bundled the same way, as the CDK app deploys.
import { readdirSync } from "node:fs";
import { build } from "esbuild";

const shared = {
  bundle: true,
  platform: "node",
  target: "node20",
  format: "esm",
  sourcemap: true,
  packages: "external",
  logLevel: "warning",
  outExtension: { ".js": ".mjs" },
};

const functions = Object.fromEntries(
  readdirSync("functions", { withFileTypes: true })
    .filter((entry) => entry.isDirectory() && entry.name !== "shared")
    .map((entry) => [entry.name, `functions/${entry.name}/handler.ts`]),
);

await Promise.all([
  build({ ...shared, entryPoints: { agent: "agent/main.ts" }, outdir: "dist" }),
  build({ ...shared, entryPoints: { cli: "cli/main.ts" }, outdir: "dist" }),
  build({ ...shared, entryPoints: { "local-s3": "infra/local/s3/s3rver-main.ts" }, outdir: "dist" }),
  build({ ...shared, entryPoints: functions, outdir: "dist/functions" }),
]);
