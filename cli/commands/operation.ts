import { Command } from "commander";
import { nameArg } from "../args.js";
import { contextOf } from "../context.js";
import { print } from "../output.js";
import { followOperation } from "../progress.js";
import { operationDescription, operationTable } from "../views.js";

export function operationCommand(): Command {
  const operation = new Command("operation")
    .alias("operations")
    .alias("op")
    .description("long work (rebuild, resync, replica changes, clones, repair): its state and progress");

  operation
    .command("list")
    .alias("ls")
    .description("list operations, oldest first")
    .option("--volume <name>", "only this volume's operations")
    .action(async (options: { volume?: string }, command: Command) => {
      const context = contextOf(command);
      const volume = options.volume === undefined ? undefined : nameArg(options.volume, "volume");
      const operations = await (await context.client()).listOperations({ volume });
      context.emit({ operations }, () =>
        print(operations.length === 0 ? "No operations." : operationTable(operations)),
      );
    });

  operation
    .command("show")
    .description("describe an operation: volume, node, state, progress, times, error")
    .argument("<id>", "operation id")
    .action(async (id: string, _options: object, command: Command) => {
      const context = contextOf(command);
      const found = await (await context.client()).getOperation(id);
      context.emit(found, (op) => print(operationDescription(op)));
    });

  operation
    .command("wait")
    .description("follow an operation until it ends; exit 1 with its error when it fails")
    .argument("<id>", "operation id")
    .action(async (id: string, _options: object, command: Command) => {
      const context = contextOf(command);
      const ended = await followOperation(await context.client(), id);
      context.emit(ended, (op) => print(`operation ${op.id} (${op.kind} of ${op.volumeName}) succeeded`));
    });

  operation
    .command("cancel")
    .description("cancel an operation: at once when pending, when its node next looks when running")
    .argument("<id>", "operation id")
    .action(async (id: string, _options: object, command: Command) => {
      const context = contextOf(command);
      const cancelled = await (await context.client()).cancelOperation(id);
      context.emit(cancelled, (op) =>
        print(
          op.state === "cancelled"
            ? `operation ${op.id} cancelled`
            : `operation ${op.id} is ${op.state}: its node stops it when it next looks`,
        ),
      );
    });

  return operation;
}
