import { Command } from "commander";
import { cloudsnapCommand } from "./commands/cloudsnap.js";
import { clusterCommand } from "./commands/cluster.js";
import { eventsCommand } from "./commands/events.js";
import { nodeCommand } from "./commands/node.js";
import { operationCommand } from "./commands/operation.js";
import { policyCommand } from "./commands/policy.js";
import { snapshotCommand } from "./commands/snapshot.js";
import { volumeCommand } from "./commands/volume.js";
import { workflowCommand } from "./commands/workflow.js";
import { zoneCommand } from "./commands/zone.js";

export const CLI_VERSION = "0.1.0";

/** The `strata` command tree. Global options work before or after the subcommand. */
export function buildProgram(): Command {
  const program = new Command("strata")
    .description("Strata: replicated block storage for Kubernetes, run locally or on AWS")
    .version(CLI_VERSION)
    .option("--dir <dir>", "local cluster directory (default: $STRATA_HOME, else ./.strata)")
    .option("--json", "print the API's JSON instead of tables")
    .option("--node <id>", "node that volume and snapshot commands go to (default: the first node)")
    .option(
      "--api <url>",
      "the control API of one agent to talk to instead of a local cluster's, e.g. an agent on EKS: http://<node IP>:9410 (default: $STRATA_API_URL)",
    )
    .option(
      "--stack-prefix <prefix>",
      "with --api, the workflows are the control plane's deployed in AWS (region and credentials from the AWS environment): the prefix it was deployed with (default: $STRATA_STACK_PREFIX, else strata)",
    )
    .showSuggestionAfterError(true);

  program.addCommand(clusterCommand());
  program.addCommand(nodeCommand());
  program.addCommand(volumeCommand());
  program.addCommand(snapshotCommand());
  program.addCommand(operationCommand());
  program.addCommand(cloudsnapCommand());
  program.addCommand(policyCommand());
  program.addCommand(zoneCommand());
  program.addCommand(workflowCommand());
  program.addCommand(eventsCommand());
  applyToAll(program, (command) => command.exitOverride());
  return program;
}

/** Commander settings are per command; subcommands built separately do not inherit them. */
function applyToAll(command: Command, apply: (command: Command) => void): void {
  apply(command);
  for (const sub of command.commands) applyToAll(sub, apply);
}
