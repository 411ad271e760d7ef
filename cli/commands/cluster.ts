import { basename, relative, resolve } from "node:path";
import { Command } from "commander";
import { CLOUDSNAP_PASSPHRASE_VARIABLE } from "../../core/cloud/cloudsnap-passphrase.js";
import { CLOUDSNAP_BUCKET_VARIABLE, LOCAL_CLOUDSNAP_BUCKET } from "../../core/cloud/s3-client.js";
import { findAgentEntry } from "../../infra/local/agent-entry.js";
import { CLOUDSNAP_PASSPHRASE_FILE } from "../../infra/local/cloudsnap-storage.js";
import type { ClusterFile } from "../../infra/local/cluster-file.js";
import { planLocalNodes } from "../../infra/local/node-spec.js";
import { LOCAL_STATE_TABLE } from "../../infra/local/state-service.js";
import { LocalCluster } from "../../infra/local/supervisor.js";
import { bucketArg, countArg, endpointArg, portArg } from "../args.js";
import { resolveClusterDir, runningCluster } from "../cluster-dir.js";
import { type ClusterStatus, clusterStatus } from "../cluster-status.js";
import { contextOf } from "../context.js";
import { indent, print } from "../output.js";
import { clusterVolumeTable, nodeTable, sharedFilesystemLines } from "../views.js";

/** Three nodes in three zones: the smallest cluster where RF3 spreads over distinct zones. */
const DEFAULT_NODES = 3;
const DEFAULT_ZONES = 3;

interface UpOptions {
  nodes: number;
  zones: number;
  apiPort: number;
  nbdPort: number;
  replicationPort: number;
  nbdHost: string;
  s3Endpoint?: string;
  bucket?: string;
  cloudsnapPassphraseFile?: string;
}

export function clusterCommand(): Command {
  const cluster = new Command("cluster").description("run and inspect the local cluster");

  cluster
    .command("up")
    .description("start a local cluster in the foreground (Ctrl-C stops it; volumes persist)")
    .option("--nodes <n>", "number of agents (node-1, node-2, ...)", countArg, DEFAULT_NODES)
    .option(
      "--zones <n>",
      "number of zones the nodes are spread over (local-a, local-b, ...)",
      countArg,
      DEFAULT_ZONES,
    )
    .option(
      "--api-port <port>",
      "control API port of the first agent, +1 per node (0: any free port)",
      portArg,
      9410,
    )
    .option(
      "--nbd-port <port>",
      "NBD port of the first agent, +1 per node (0: any free port)",
      portArg,
      10809,
    )
    .option(
      "--replication-port <port>",
      "replication port of the first agent, +1 per node (0: any free port)",
      portArg,
      9510,
    )
    .option(
      "--nbd-host <address>",
      "address NBD listens on; 0.0.0.0 exports beyond this machine",
      "127.0.0.1",
    )
    .option(
      "--s3-endpoint <url>",
      "S3 endpoint for cloudsnaps, e.g. another local cluster's, instead of starting s3rver",
      endpointArg,
    )
    .option(
      "--bucket <name>",
      `bucket for cloudsnaps, created if missing (default: $${CLOUDSNAP_BUCKET_VARIABLE}, else ${LOCAL_CLOUDSNAP_BUCKET})`,
      bucketArg,
    )
    .option(
      "--cloudsnap-passphrase-file <path>",
      `the cloudsnap passphrase, e.g. another cluster's (default: $${CLOUDSNAP_PASSPHRASE_VARIABLE}, else <dir>/${CLOUDSNAP_PASSPHRASE_FILE}, made on the first start)`,
      (path: string) => resolve(path),
    )
    .action(async (options: UpOptions, command: Command) => {
      const { dir } = contextOf(command);
      const nodes = planLocalNodes({
        dir,
        ...options,
        nodeCount: options.nodes,
        zoneCount: options.zones,
        stateTable: LOCAL_STATE_TABLE,
      });
      const running = await LocalCluster.start({
        dir,
        nodes,
        agentEntry: findAgentEntry(),
        cloudsnaps: {
          s3Endpoint: options.s3Endpoint,
          bucket: options.bucket,
          passphraseFile: options.cloudsnapPassphraseFile,
        },
        report,
      });
      stopOnSignals(running, dir);
      const { file } = running;
      print(`\nStrata local cluster running in ${dir} (supervisor pid ${file.pid})\n`);
      const status = await clusterStatus(file);
      print(statusText(status));
      print(
        `\n${nextSteps(
          cliFor(dir),
          dir,
          file,
          status.volumes.map((volume) => volume.name),
        )}`,
      );
    });

  cluster
    .command("status")
    .description("show the nodes of the local cluster and the replicas of every volume")
    .action(async (_options: object, command: Command) => {
      const context = contextOf(command);
      const status = await clusterStatus(await runningCluster(context.dir));
      context.emit(status, () => print(statusText(status)));
    });

  return cluster;
}

function statusText(status: ClusterStatus): string {
  const volumes =
    status.volumes.length === 0 ? "No volumes." : clusterVolumeTable(status.volumes, status.nodes);
  const nodes = [
    nodeTable(status.nodes),
    ...sharedFilesystemLines(status.sharedFilesystems),
    ...status.unavailableZones.map(
      (zone) => `zone ${zone.zone} is marked unavailable for placement since ${zone.since} (${zone.reason})`,
    ),
  ].join("\n");
  return `${nodes}\n\n${volumes}`;
}

/** The supervisor's own terminal lines, timestamped so a restart can be matched with agent.log. */
function report(line: string): void {
  print(`${new Date().toISOString().slice(11, 19)} ${line}`);
}

function stopOnSignals(running: LocalCluster, dir: string): void {
  let stopping = false;
  const stop = (signal: NodeJS.Signals) => {
    if (stopping) {
      report("still stopping: agents get up to 10 s to flush their volumes");
      return;
    }
    stopping = true;
    report(`${signal}: stopping the cluster`);
    running.stop().then(
      () => {
        report(
          `stopped; volumes are kept in ${dir} and come back with the next \`${cliFor(dir)} cluster up\``,
        );
        process.exit(0);
      },
      (error: unknown) => {
        report(`could not stop cleanly: ${(error as Error).message}`);
        process.exit(1);
      },
    );
  };
  process.on("SIGINT", stop);
  process.on("SIGTERM", stop);
}

/**
 * Copy-pasteable next steps with this cluster's real directory and ports: how to make a first
 * volume when there is none, how to reach the volumes there are otherwise.
 */
export function nextSteps(cli: string, dir: string, file: ClusterFile, volumes: readonly string[]): string {
  const first = file.nodes[0]!;
  const demo = volumes[0] ?? "demo";
  const nbdUri = `nbd://${first.nbdAddress}/${demo}`;
  const reach = [
    `${cli} volume attach ${demo}`,
    `nbdinfo ${nbdUri}`,
    `qemu-io -f raw -c 'write -P 0xab 0 64k' -c 'read -P 0xab 0 64k' ${nbdUri}`,
  ];
  const lines =
    volumes.length === 0
      ? [
          "Create a volume, attach it, and reach it over NBD:",
          indent([`${cli} volume create demo --size 1GiB`, ...reach].join("\n")),
        ]
      : [
          "Your volumes are back; list them, attach one, and reach it over NBD:",
          indent([`${cli} volume list`, ...reach].join("\n")),
        ];
  const other = file.nodes[1];
  if (other) {
    const create = volumes.length === 0 ? [`${cli} --node ${other.id} volume create other --size 1GiB`] : [];
    lines.push(
      "",
      `Volume commands go to ${first.id} unless told otherwise; stop and start a node to try a failure:`,
      indent(
        [
          ...create,
          `${cli} node stop ${other.id} --kill`,
          `${cli} cluster status`,
          `${cli} node start ${other.id}`,
        ].join("\n"),
      ),
    );
  }
  if (other) {
    lines.push(
      "",
      "Lose a node's instance, as AWS can, and watch the workflows recover without you:",
      indent([`${cli} node kill ${other.id}`, `${cli} events --follow`, `${cli} workflow list`].join("\n")),
    );
  }
  lines.push("", `Press Ctrl-C to stop the cluster; volumes are kept in ${dir}.`);
  return lines.join("\n");
}

/**
 * How to run this CLI again so the printed commands work as pasted: `npx strata` when npx started
 * it or it runs from a project's node_modules/.bin (neither is on the user's PATH), `strata` when
 * installed globally, else node and the script's path.
 */
export function invocation(script: string | undefined, cwd: string, env: NodeJS.ProcessEnv): string {
  if (env.npm_command === "exec" || script === undefined || script.includes("/node_modules/.bin/"))
    return "npx strata";
  if (basename(script) === "strata") return "strata";
  const nearby = relative(cwd, script);
  return `node ${shellQuote(nearby.startsWith("..") ? script : nearby)}`;
}

/** The command line that reaches this cluster: the invocation, and --dir unless it is the default. */
function cliFor(dir: string): string {
  const cli = [invocation(process.argv[1], process.cwd(), process.env)];
  if (dir !== resolveClusterDir(undefined)) cli.push("--dir", shellQuote(dir));
  return cli.join(" ");
}

const shellQuote = (text: string) =>
  /^[\w./:@%+=-]+$/.test(text) ? text : `'${text.replaceAll("'", `'\\''`)}'`;
