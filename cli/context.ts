import type { Command } from "commander";
import { ControlClient } from "../core/control-client.js";
import { DEFAULT_PREFIX } from "../infra/workflows.js";
import { controlClient, resolveClusterDir } from "./cluster-dir.js";
import { usageError } from "./failures.js";
import { printJson } from "./output.js";

export interface GlobalOptions {
  dir?: string;
  json?: boolean;
  node?: string;
  api?: string;
  stackPrefix?: string;
}

/** What every command needs: where the cluster is, how to talk to it, how to print. */
export interface CliContext {
  dir: string;
  json: boolean;
  /** The one agent the command talks to (--api), for a cluster with no local cluster file. */
  api: string | undefined;
  /** With `api`: the prefix of the control plane deployed in AWS, whose workflows it runs. */
  stackPrefix: string;
  client(): Promise<ControlClient>;
  /** Prints `value` as JSON under --json, otherwise calls `human` to print it for people. */
  emit<T>(value: T, human: (value: T) => void): void;
}

export function contextOf(command: Command): CliContext {
  const options = command.optsWithGlobals<GlobalOptions>();
  const dir = resolveClusterDir(options.dir);
  const json = options.json === true;
  const api = agentApi(options.api ?? process.env.STRATA_API_URL, options.node);
  return {
    dir,
    json,
    api,
    stackPrefix: options.stackPrefix ?? (process.env.STRATA_STACK_PREFIX || DEFAULT_PREFIX),
    client: async () => (api === undefined ? controlClient(dir, options.node) : new ControlClient(api)),
    emit: (value, human) => (json ? printJson(value) : human(value)),
  };
}

/**
 * The one agent `--api` names (an agent on EKS has no local cluster file to find it by), as the base
 * URL the client prefixes paths with; undefined when none is given. `--node` chooses among a local
 * cluster's agents, so the two together are a contradiction.
 */
function agentApi(url: string | undefined, node: string | undefined): string | undefined {
  if (url === undefined || url === "") return undefined;
  if (node !== undefined)
    throw usageError("give --api or --node, not both: --api names the agent to talk to");
  const parsed = URL.canParse(url) ? new URL(url) : undefined;
  if (parsed?.protocol !== "http:" && parsed?.protocol !== "https:") {
    throw usageError(`--api must be an http:// or https:// URL of an agent's control API, got "${url}"`);
  }
  return parsed.href.replace(/\/+$/, "");
}
