import { resolve } from "node:path";
import { ControlClient } from "../core/control-client.js";
import { type ClusterFile, readClusterFile } from "../infra/local/cluster-file.js";
import { isAlive } from "../infra/local/processes.js";
import { CliError } from "./failures.js";

export const DEFAULT_CLUSTER_DIR = ".strata";

/** Where the local cluster lives: --dir, else $STRATA_HOME, else ./.strata. Always absolute. */
export function resolveClusterDir(option: string | undefined): string {
  return resolve(option ?? process.env.STRATA_HOME ?? DEFAULT_CLUSTER_DIR);
}

/** The running cluster in `dir`, or a clear refusal saying how to start one. */
export async function runningCluster(dir: string): Promise<ClusterFile> {
  let file: ClusterFile | undefined;
  try {
    file = await readClusterFile(dir);
  } catch (error) {
    throw new CliError((error as Error).message);
  }
  if (!file || file.nodes.length === 0) {
    throw new CliError(`no Strata cluster is running in ${dir}: start one with \`strata cluster up\``);
  }
  if (!isAlive(file.pid)) {
    throw new CliError(
      `the Strata cluster in ${dir} is not running (its supervisor, pid ${file.pid}, has exited): ` +
        "start it again with `strata cluster up`",
    );
  }
  return file;
}

/** The client for volume and snapshot commands: the agent of `nodeId` (--node), else the first node. */
export async function controlClient(dir: string, nodeId?: string): Promise<ControlClient> {
  const cluster = await runningCluster(dir);
  const node = nodeId === undefined ? cluster.nodes[0]! : clusterNode(cluster, nodeId);
  return new ControlClient(node.apiUrl);
}

/**
 * The node `nodeId` of the running cluster. A well-formed name the cluster does not have is a
 * refused request (exit 1), not a bad command line, for every command that takes a node.
 */
export function clusterNode(cluster: ClusterFile, nodeId: string): ClusterFile["nodes"][number] {
  const node = cluster.nodes.find(({ id }) => id === nodeId);
  if (node !== undefined) return node;
  const known = cluster.nodes.map(({ id }) => id).join(", ");
  throw new CliError(`no node "${nodeId}" in this cluster (nodes: ${known})`);
}
