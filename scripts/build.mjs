// Bundles the agent and the CLI into dist/ so `npx strata` and the agent processes run plain JS.
import { build } from "esbuild";

const shared = {
  bundle: true,
  platform: "node",
  target: "node20",
  format: "esm",
  sourcemap: true,
  packages: "external",
  logLevel: "warning",
};

await Promise.all([
  build({
    ...shared,
    entryPoints: { agent: "agent/main.ts" },
    outdir: "dist",
    outExtension: { ".js": ".mjs" },
  }),
  build({ ...shared, entryPoints: { cli: "cli/main.ts" }, outdir: "dist", outExtension: { ".js": ".mjs" } }),
]);
