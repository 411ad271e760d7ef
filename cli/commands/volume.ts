import { randomUUID } from "node:crypto";
import { Command } from "commander";
import { labelArg, nameArg, replicationArg, volumeSizeArg } from "../args.js";
import { contextOf } from "../context.js";
import { usageError } from "../failures.js";
import { formatSize } from "../format.js";
import { print, warn } from "../output.js";
import { followOperation } from "../progress.js";
import { attachmentDescription, volumeDescription, volumeTable } from "../views.js";

interface CreateOptions {
  size: number;
  label?: Record<string, string>;
  repl: number;
  selector?: Record<string, string>;
  policy?: string;
  group?: string;
}

export function volumeCommand(): Command {
  const volume = new Command("volume").alias("volumes").description("create, inspect and attach volumes");

  volume
    .command("create")
    .description("create a thin volume on the cluster")
    .argument("<name>", "volume name (also its NBD export name)")
    .requiredOption(
      "--size <size>",
      "size with a unit, e.g. 10Gi (10 GiB) or 10G (10×10^9 bytes); at most 64 TiB, and smaller than the nodes' filesystems allow for one file (16 TiB on ext4)",
      volumeSizeArg,
    )
    .option("--label <key=value>", "label the volume (repeatable)", labelArg)
    .option("--repl <n>", "replicas on distinct nodes and zones: 1, 2 or 3", replicationArg, 1)
    .option("--selector <key=value>", "place replicas only on nodes with this label (repeatable)", labelArg)
    .option(
      "--policy <name>",
      "take cloudsnaps and snapshots on this schedule policy's schedules (see `strata policy`)",
    )
    .option(
      "--group <name>",
      "with --policy: its scheduled snapshots are taken together with the group's other volumes, its cloudsnaps tagged with it",
    )
    .action(async (name: string, options: CreateOptions, command: Command) => {
      const context = contextOf(command);
      const client = await context.client();
      const assignment = assignmentOf(options.policy, options.group);
      // Checked first, so a misspelt policy creates no volume.
      if (assignment !== undefined) await client.getPolicy(assignment.policy);
      const created = await client.createVolume({
        name: nameArg(name, "volume"),
        sizeBytes: options.size,
        labels: options.label ?? {},
        replicationFactor: options.repl,
        nodeSelector: options.selector ?? {},
      });
      const followed =
        assignment === undefined ? undefined : await client.assignPolicy(created.name, assignment);
      context.emit({ ...created, ...(followed ? { policy: followed.policy } : {}) }, (v) => {
        const placed =
          v.replicas.length > 1 ? `, replicas on ${v.replicas.map((r) => r.node).join(", ")}` : "";
        const scheduled = followed === undefined ? "" : `, cloudsnaps by policy "${followed.policy}"`;
        print(`volume "${v.name}" created (${formatSize(v.sizeBytes)}${placed}${scheduled})`);
        for (const warning of v.warnings ?? []) warn(warning);
      });
    });

  volume
    .command("policy")
    .description("give a volume a schedule policy (replacing its own), or with --none take it away")
    .argument("<name>", "volume name")
    .argument("[policy]", "policy name")
    .option(
      "--none",
      "the volume follows no policy: no more scheduled cloudsnaps or snapshots (the ones made stay)",
    )
    .option(
      "--group <name>",
      "its scheduled snapshots are taken together with the group's other volumes, its cloudsnaps tagged with it",
    )
    .action(
      async (
        name: string,
        policy: string | undefined,
        options: { none?: boolean; group?: string },
        command: Command,
      ) => {
        const context = contextOf(command);
        const volumeName = nameArg(name, "volume");
        if ((policy === undefined) === (options.none !== true)) {
          throw usageError("give a policy name, or --none to take the volume's policy away");
        }
        const client = await context.client();
        const assignment = assignmentOf(policy, options.group);
        if (assignment === undefined) {
          await client.unassignPolicy(volumeName);
          context.emit({ volume: volumeName, policy: null }, () =>
            print(`volume "${volumeName}" follows no policy`),
          );
          return;
        }
        const followed = await client.assignPolicy(volumeName, assignment);
        context.emit(followed, (a) =>
          print(
            `volume "${a.volumeName}" follows policy "${a.policy}"${a.group === undefined ? "" : ` (group ${a.group})`}`,
          ),
        );
      },
    );

  volume
    .command("ha-update")
    .description(
      "raise or lower a volume's replica count online, attached or not: an operation run by --node; returning replicas are resynced, new ones rebuilt while I/O goes on",
    )
    .argument("<name>", "volume name")
    .requiredOption("--repl <n>", "the replication factor to reach: 1, 2 or 3", replicationArg)
    .option("--no-wait", "print the operation's id and return; `strata operation wait ID` follows it")
    .action(async (name: string, options: { repl: number; wait: boolean }, command: Command) => {
      const context = contextOf(command);
      const client = await context.client();
      const volumeName = nameArg(name, "volume");
      const started = await client.startOperation({
        kind: "replication",
        volume: volumeName,
        // One invocation, one operation: a retried request finds the operation it started.
        requestToken: `ha-update-${volumeName}-${randomUUID()}`,
        params: { replicationFactor: options.repl },
      });
      if (!options.wait) {
        context.emit(started, (op) => print(op.id));
        return;
      }
      const ended = await followOperation(client, started.id);
      const updated = await client.getVolume(volumeName);
      const warnings = ended.warnings ?? [];
      context.emit(warnings.length === 0 ? updated : { ...updated, warnings }, (v) => {
        print(
          `volume "${v.name}" now has ${v.replicas.length} replicas: ${v.replicas.map((r) => `${r.node}(${r.state})`).join(" ")}`,
        );
        for (const warning of warnings) warn(warning);
      });
    });

  volume
    .command("list")
    .alias("ls")
    .description("list volumes")
    .action(async (_options: object, command: Command) => {
      const context = contextOf(command);
      const volumes = await (await context.client()).listVolumes();
      context.emit({ volumes }, () => print(volumes.length === 0 ? "No volumes." : volumeTable(volumes)));
    });

  volume
    .command("inspect")
    .description("describe a volume: size, space, labels, attachment, replicas, snapshots")
    .argument("<name>", "volume name")
    .action(async (name: string, _options: object, command: Command) => {
      const context = contextOf(command);
      const client = await context.client();
      const found = await client.getVolume(nameArg(name, "volume"));
      const snapshots = await client.listSnapshots(found.name);
      context.emit(found, (v) => print(volumeDescription(v, snapshots)));
    });

  volume
    .command("resize")
    .description("grow a volume (shrinking is refused)")
    .argument("<name>", "volume name")
    .requiredOption("--size <size>", "new size with a unit, e.g. 20Gi (20 GiB)", volumeSizeArg)
    .action(async (name: string, options: { size: number }, command: Command) => {
      const context = contextOf(command);
      const resized = await (await context.client()).resizeVolume(nameArg(name, "volume"), options.size);
      context.emit(resized, (v) => print(`volume "${v.name}" resized to ${formatSize(v.sizeBytes)}`));
    });

  volume
    .command("delete")
    .alias("rm")
    .description("delete a detached volume and its snapshots")
    .argument("<name>", "volume name")
    .action(async (name: string, _options: object, command: Command) => {
      const context = contextOf(command);
      await (await context.client()).deleteVolume(nameArg(name, "volume"));
      context.emit({ deleted: name }, () => print(`volume "${name}" deleted`));
    });

  volume
    .command("attach")
    .description("export a volume over NBD on its node")
    .argument("<name>", "volume name")
    .action(async (name: string, _options: object, command: Command) => {
      const context = contextOf(command);
      const attachment = await (await context.client()).attachVolume(nameArg(name, "volume"));
      context.emit(attachment, (a) => print(attachmentDescription(a)));
    });

  volume
    .command("detach")
    .description("stop exporting a volume (refused while NBD clients are connected)")
    .argument("<name>", "volume name")
    .action(async (name: string, _options: object, command: Command) => {
      const context = contextOf(command);
      await (await context.client()).detachVolume(nameArg(name, "volume"));
      context.emit({ detached: name }, () => print(`volume "${name}" detached`));
    });

  return volume;
}

/** e.g. "node-3 resync 12 MiB / 40 MiB": the replicas being rebuilt or resynced now, if any. */

/** The policy (and group) a volume is to follow, checked as arguments; undefined without a policy. */
function assignmentOf(
  policy: string | undefined,
  group: string | undefined,
): { policy: string; group?: string } | undefined {
  if (policy === undefined) {
    if (group !== undefined)
      throw usageError("--group needs a policy: it names the group of scheduled cloudsnaps");
    return undefined;
  }
  return {
    policy: nameArg(policy, "policy"),
    ...(group === undefined ? {} : { group: nameArg(group, "group") }),
  };
}
