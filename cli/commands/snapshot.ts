import { Command } from "commander";
import { labelArg, nameArg, snapshotRefArg } from "../args.js";
import { contextOf } from "../context.js";
import { print } from "../output.js";
import { withProgress } from "../progress.js";
import { snapshotTable } from "../views.js";

export function snapshotCommand(): Command {
  const snapshot = new Command("snapshot")
    .alias("snapshots")
    .alias("snap")
    .description("point-in-time snapshots, addressed as VOLUME@SNAPSHOT");

  snapshot
    .command("create")
    .description("snapshot a volume (instant, whatever its size)")
    .argument("<volume>", "volume name")
    .option("--name <name>", "snapshot name (default: chosen by the agent)")
    .action(async (volume: string, options: { name?: string }, command: Command) => {
      const context = contextOf(command);
      const name = options.name === undefined ? undefined : nameArg(options.name, "snapshot");
      const created = await (await context.client()).createSnapshot(nameArg(volume, "volume"), name);
      context.emit(created, (s) => print(`snapshot "${s.volume}@${s.name}" created`));
    });

  snapshot
    .command("list")
    .alias("ls")
    .description("list a volume's snapshots")
    .argument("<volume>", "volume name")
    .action(async (volume: string, _options: object, command: Command) => {
      const context = contextOf(command);
      const snapshots = await (await context.client()).listSnapshots(nameArg(volume, "volume"));
      context.emit({ snapshots }, () =>
        print(snapshots.length === 0 ? `No snapshots of volume "${volume}".` : snapshotTable(snapshots)),
      );
    });

  snapshot
    .command("delete")
    .alias("rm")
    .description("delete a snapshot, merging its data into its neighbour")
    .argument("<volume@snapshot>", "the snapshot")
    .action(async (reference: string, _options: object, command: Command) => {
      const context = contextOf(command);
      const { volume, snapshot: name } = snapshotRefArg(reference);
      const client = await context.client();
      await withProgress(`deleting ${reference}`, () => client.deleteSnapshot(volume, name));
      context.emit({ deleted: reference }, () => print(`snapshot "${reference}" deleted`));
    });

  snapshot
    .command("clone")
    .description("create a new volume from a snapshot")
    .argument("<volume@snapshot>", "the snapshot")
    .requiredOption("--to <name>", "name of the new volume")
    .option("--label <key=value>", "label the new volume (repeatable)", labelArg)
    .action(
      async (
        reference: string,
        options: { to: string; label?: Record<string, string> },
        command: Command,
      ) => {
        const context = contextOf(command);
        const { volume, snapshot: name } = snapshotRefArg(reference);
        const target = nameArg(options.to, "volume");
        const client = await context.client();
        const clone = await withProgress(`cloning ${reference} to ${target}`, () =>
          client.cloneSnapshot(volume, name, target, options.label ?? {}),
        );
        context.emit(clone, (v) => print(`volume "${v.name}" created from snapshot "${reference}"`));
      },
    );

  snapshot
    .command("revert")
    .alias("rollback")
    .description(
      "roll a volume back to a snapshot (single-replica: detached; replicated: attached, no client connected)",
    )
    .argument("<volume@snapshot>", "the snapshot")
    .action(async (reference: string, _options: object, command: Command) => {
      const context = contextOf(command);
      const { volume, snapshot: name } = snapshotRefArg(reference);
      const client = await context.client();
      const reverted = await withProgress(`reverting ${volume} to ${name}`, () =>
        client.revertVolume(volume, name),
      );
      context.emit(reverted, (v) => print(`volume "${v.name}" reverted to snapshot "${reference}"`));
    });

  return snapshot;
}
