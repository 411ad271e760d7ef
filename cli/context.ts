import type { Command } from "commander";
import type { ControlClient } from "../core/control-client.js";
import { controlClient, resolveClusterDir } from "./cluster-dir.js";
import { printJson } from "./output.js";

export interface GlobalOptions {
  dir?: string;
  json?: boolean;
  node?: string;
}

/** What every command needs: where the cluster is, how to talk to it, how to print. */
export interface CliContext {
  dir: string;
  json: boolean;
  client(): Promise<ControlClient>;
  /** Prints `value` as JSON under --json, otherwise calls `human` to print it for people. */
  emit<T>(value: T, human: (value: T) => void): void;
}

export function contextOf(command: Command): CliContext {
  const options = command.optsWithGlobals<GlobalOptions>();
  const dir = resolveClusterDir(options.dir);
  const json = options.json === true;
  return {
    dir,
    json,
    client: () => controlClient(dir, options.node),
    emit: (value, human) => (json ? printJson(value) : human(value)),
  };
}
