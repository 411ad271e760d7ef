import { Command } from "commander";
import { clusterNode, runningCluster } from "../cluster-dir.js";
import { contextOf } from "../context.js";
import { print } from "../output.js";
import { SupervisorClient } from "../supervisor-client.js";
import { supervisedNodeTable } from "../views.js";

/** The local cluster's agent processes, through the running supervisor's control channel. */
export function nodeCommand(): Command {
  const node = new Command("node")
    .alias("nodes")
    .description("list, stop and start the local cluster's agents");

  node
    .command("list")
    .alias("ls")
    .description("the agent process of every node: running, starting, restarting or stopped")
    .action(async (_options: object, command: Command) => {
      const context = contextOf(command);
      const nodes = await (await supervisor(context.dir)).listNodes();
      context.emit({ nodes }, () => print(supervisedNodeTable(nodes)));
    });

  node
    .command("stop")
    .description("stop one node's agent; the supervisor leaves it down until `node start`")
    .argument("<node>", "node id, e.g. node-2")
    .option("--kill", "kill -9 the agent, as a crash would, instead of a clean stop")
    .action(async (nodeId: string, options: { kill?: boolean }, command: Command) => {
      const context = contextOf(command);
      const kill = options.kill === true;
      const stopped = await (await supervisor(context.dir, nodeId)).stopNode(nodeId, kill);
      context.emit(stopped, (n) => print(`node "${n.id}" ${kill ? "killed" : "stopped"}`));
    });

  node
    .command("start")
    .description("start a stopped node's agent again; returns once it serves and has registered")
    .argument("<node>", "node id, e.g. node-2")
    .action(async (nodeId: string, _options: object, command: Command) => {
      const context = contextOf(command);
      const started = await (await supervisor(context.dir, nodeId)).startNode(nodeId);
      context.emit(started, (n) => print(`node "${n.id}" running (pid ${n.pid})`));
    });

  node
    .command("kill")
    .description(
      "lose the node's instance, as a hardware failure would: agent killed, instance terminated, EC2's events sent; the workflows recover",
    )
    .argument("<node>", "node id, e.g. node-2")
    .option(
      "--replace",
      "the node group starts a replacement instance in the same zone (its drives move there)",
    )
    .action(async (nodeId: string, options: { replace?: boolean }, command: Command) => {
      const context = contextOf(command);
      const replace = options.replace === true;
      const killed = await (await supervisor(context.dir, nodeId)).killNode(nodeId, replace);
      context.emit(killed, (n) =>
        print(
          `node "${n.id}" lost its instance${replace ? `; a replacement is starting in ${n.zone}` : ""}\n` +
            "Follow the recovery: strata events --follow, strata workflow list",
        ),
      );
    });

  return node;
}

/** The running cluster's supervisor; `nodeId`, when given, must be one of its nodes. */
async function supervisor(dir: string, nodeId?: string): Promise<SupervisorClient> {
  const cluster = await runningCluster(dir);
  if (nodeId !== undefined) clusterNode(cluster, nodeId);
  return new SupervisorClient(dir);
}
