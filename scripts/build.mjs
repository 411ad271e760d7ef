// Bundles the agent, the CLI, the local S3 server's process and every Lambda into dist/ so `npx strata`, the agent processes and
// the local cloud run plain JS. dist/functions/<name>.mjs is what the local cloud loads in-process:
// the same handler, bundled the same way, as the CDK app deploys. dist/image/ is the agent once
// more, with its dependencies inside, for the agent's container image (Dockerfile).
import { cpSync, mkdirSync, readdirSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { dirname } from "node:path";
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

/**
 * The agent image's bundle, dist/image/: every dependency inside, so the image carries no
 * node_modules, only this directory. Its native parts sit beside it: Strata's addon where
 * agent/native/extents.ts looks (build/Release above the bundle), and LevelDB's prebuilt binaries
 * (for the standalone agent's embedded state store), whose loader is pointed at their own folder.
 */
const IMAGE_DIR = "dist/image";
const IMAGE_BANNER = [
  'import { createRequire as __strataCreateRequire } from "node:module";',
  'import { dirname as __strataDirname } from "node:path";',
  'import { fileURLToPath as __strataFileUrlToPath } from "node:url";',
  // Bundled CommonJS modules require Node's own modules; ESM has no require of its own to give them.
  "const require = __strataCreateRequire(import.meta.url);",
  "const __strataImageDir = __strataDirname(__strataFileUrlToPath(import.meta.url));",
].join("\n");
/** Two dependencies find their parts at run time in ways a bundle has to be told about. */
const imageFixes = {
  name: "strata-image-fixes",
  setup(builder) {
    // classic-level looks for its binary next to its own source (__dirname), which a bundle no
    // longer has: it looks in dist/image/classic-level instead, where the prebuilt ones are copied.
    builder.onLoad({ filter: /classic-level[\\/]binding\.js$/ }, (file) => ({
      contents:
        'module.exports = require("node-gyp-build")(require("node:path").join(__strataImageDir, "classic-level"));',
      loader: "js",
      resolveDir: dirname(file.path),
    }));
    // dynalite requires its actions by computed names without the extension, which esbuild's bundled
    // file map keys with it.
    builder.onLoad({ filter: /dynalite[\\/]index\.js$/ }, async (file) => {
      const source = await readFile(file.path, "utf8");
      const pattern = /require\((['"])\.\/(actions|validations)\/\1 \+ action\)/g;
      if ((source.match(pattern) ?? []).length !== 2)
        throw new Error(
          `${file.path} no longer requires its actions as scripts/build.mjs expects: update the fix`,
        );
      return { contents: source.replace(pattern, "require($1./$2/$1 + action + $1.js$1)"), loader: "js" };
    });
  },
};

function copyImageNatives() {
  mkdirSync(`${IMAGE_DIR}/build/Release`, { recursive: true });
  cpSync("build/Release/strata_native.node", `${IMAGE_DIR}/build/Release/strata_native.node`);
  for (const platform of ["linux-x64", "linux-arm64"])
    cpSync(
      `node_modules/classic-level/prebuilds/${platform}`,
      `${IMAGE_DIR}/classic-level/prebuilds/${platform}`,
      {
        recursive: true,
      },
    );
}

await Promise.all([
  build({ ...shared, entryPoints: { agent: "agent/main.ts" }, outdir: "dist" }),
  build({
    ...shared,
    packages: "bundle",
    banner: { js: IMAGE_BANNER },
    plugins: [imageFixes],
    entryPoints: { agent: "agent/main.ts" },
    outdir: IMAGE_DIR,
  }).then(copyImageNatives),
  build({ ...shared, entryPoints: { cli: "cli/main.ts" }, outdir: "dist" }),
  build({ ...shared, entryPoints: { "local-s3": "infra/local/s3/s3rver-main.ts" }, outdir: "dist" }),
  build({ ...shared, entryPoints: functions, outdir: "dist/functions" }),
]);
