import { basename, relative } from "node:path";
import { Command } from "commander";
import { findAgentEntry } from "../../infra/local/agent-entry.js";
import type { ClusterFile } from "../../infra/local/cluster-file.js";
import { planLocalNodes } from "../../infra/local/node-spec.js";
import { LocalCluster } from "../../infra/local/supervisor.js";
import { portArg } from "../args.js";
import { ControlClient } from "../client.js";
import { resolveClusterDir, runningCluster } from "../cluster-dir.js";
import { contextOf } from "../context.js";
import { CliError } from "../failures.js";
import { indent, print } from "../output.js";
import { type NodeReport, nodeTable } from "../views.js";

/** This issue runs one agent; the supervisor takes any number of node specs. */
const LOCAL_NODE_COUNT = 1;

export function clusterCommand(): Command {
  const cluster = new Command("cluster").description("run and inspect the local cluster");

  cluster
    .command("up")
    .description("start a local cluster in the foreground (Ctrl-C stops it; volumes persist)")
    .option("--api-port <port>", "control API port of the first agent (0: any free port)", portArg, 9410)
    .option("--nbd-port <port>", "NBD port of the first agent (0: any free port)", portArg, 10809)
    .option(
      "--nbd-host <address>",
      "address NBD listens on; 0.0.0.0 exports beyond this machine",
      "127.0.0.1",
    )
    .action(async (options: { apiPort: number; nbdPort: number; nbdHost: string }, command: Command) => {
      const { dir } = contextOf(command);
      const nodes = planLocalNodes({ dir, ...options, nodeCount: LOCAL_NODE_COUNT });
      const running = await LocalCluster.start({ dir, nodes, agentEntry: findAgentEntry(), report });
      stopOnSignals(running, dir);
      const { file } = running;
      print(`\nStrata local cluster running in ${dir} (supervisor pid ${file.pid})\n`);
      print(nodeTable(await nodeReports(file)));
      print(`\n${nextSteps(dir, file)}`);
    });

  cluster
    .command("status")
    .description("show the nodes of the local cluster")
    .action(async (_options: object, command: Command) => {
      const context = contextOf(command);
      const file = await runningCluster(context.dir);
      const nodes = await nodeReports(file);
      context.emit({ pid: file.pid, startedAt: file.startedAt, nodes }, () => print(nodeTable(nodes)));
    });

  return cluster;
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
        report(`stopped; volumes are kept in ${dir} and come back with the next \`strata cluster up\``);
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

/** Asks every node for its status; a node that does not answer is listed as unreachable. */
async function nodeReports(file: ClusterFile): Promise<NodeReport[]> {
  return Promise.all(
    file.nodes.map(async ({ id, zone, apiUrl }): Promise<NodeReport> => {
      try {
        return { id, zone, apiUrl, status: await new ControlClient(apiUrl).nodeStatus() };
      } catch (error) {
        if (error instanceof CliError) return { id, zone, apiUrl, unreachable: error.message };
        throw error;
      }
    }),
  );
}

/** Copy-pasteable first steps with this cluster's real directory and ports. */
function nextSteps(dir: string, file: ClusterFile): string {
  const strata = [invocation(), ...(dir === resolveClusterDir(undefined) ? [] : ["--dir", shellQuote(dir)])];
  const nbdUri = `nbd://${file.nodes[0]!.nbdAddress}/demo`;
  return [
    "Create a volume, attach it, and reach it over NBD:",
    indent(
      [
        `${strata.join(" ")} volume create demo --size 1GiB`,
        `${strata.join(" ")} volume attach demo`,
        `nbdinfo ${nbdUri}`,
        `qemu-io -f raw -c 'write -P 0xab 0 64k' -c 'read -P 0xab 0 64k' ${nbdUri}`,
      ].join("\n"),
    ),
    "",
    `Press Ctrl-C to stop the cluster; volumes are kept in ${dir}.`,
  ].join("\n");
}

/** How this CLI was started, so the printed commands work as pasted (an installed `strata` or node bin/strata.mjs). */
function invocation(): string {
  const script = process.argv[1];
  if (!script || basename(script) === "strata") return "strata";
  const nearby = relative(process.cwd(), script);
  return `node ${shellQuote(nearby.startsWith("..") ? script : nearby)}`;
}

const shellQuote = (text: string) =>
  /^[\w./:@%+=-]+$/.test(text) ? text : `'${text.replaceAll("'", `'\\''`)}'`;
