import { randomUUID } from "node:crypto";
import { Command } from "commander";
import type { Operation } from "../../core/operations.js";
import { labelArg, nameArg, replicationArg } from "../args.js";
import { cloudsnapDescription, cloudsnapTable } from "../cloudsnap-views.js";
import { contextOf } from "../context.js";
import { formatSize } from "../format.js";
import { print, warn } from "../output.js";
import { followOperation, withProgress } from "../progress.js";
import { followRestoreWorkflow, restoreExecutionName } from "../restore-workflow.js";
import { withWorkflows } from "./workflow.js";

const WAIT_OPTION = ["--wait", "follow the operation until it ends, with its progress"] as const;

export function cloudsnapCommand(): Command {
  const cloudsnap = new Command("cloudsnap")
    .alias("cloudsnaps")
    .alias("cs")
    .description("backups of volumes in the cluster's bucket: incremental, deduplicated, encrypted");

  cloudsnap
    .command("create")
    .description(
      "snapshot volumes and upload what changed since their previous cloudsnap (an operation); several volumes are snapshotted at one point of their write streams",
    )
    .argument("<volumes...>", "volume names (several: a consistency group, attached to one node or none)")
    .option(
      "--group <name>",
      "tag the cloudsnaps as taken together (default with several volumes: the first's name)",
    )
    .option(
      "--pre-hook <command>",
      "run this shell command on the node before the snapshot (e.g. flush the database)",
    )
    .option(
      "--post-hook <command>",
      "run this shell command on the node after the snapshot, also after a failure",
    )
    .option(...WAIT_OPTION)
    .action(
      async (
        names: string[],
        options: { group?: string; preHook?: string; postHook?: string; wait?: boolean },
        command: Command,
      ) => {
        const context = contextOf(command);
        const client = await context.client();
        const [first, ...others] = names.map((name) => nameArg(name, "volume"));
        const volume = await client.getVolume(first!);
        const group = options.group ?? (others.length > 0 ? volume.name : undefined);
        const started = await client.startOperation({
          kind: "cloudsnap",
          volume: volume.name,
          // One invocation, one operation: a retried request finds the operation it started.
          requestToken: `cloudsnap-${volume.name}-${randomUUID()}`,
          params: {
            ...(group === undefined ? {} : { group: nameArg(group, "group") }),
            ...(others.length === 0 ? {} : { with: others }),
            ...(options.preHook === undefined ? {} : { preHook: options.preHook }),
            ...(options.postHook === undefined ? {} : { postHook: options.postHook }),
          },
          // An attached volume is read through its coordinator, on the node it is attached to.
          ...(volume.attachedNode === null ? {} : { node: volume.attachedNode }),
        });
        if (options.wait !== true) {
          context.emit(started, (op) => print(startedLine(op)));
          return;
        }
        const ended = await followOperation(client, started.id);
        const ids = (ended.result?.["cloudsnaps"] as string[] | undefined) ?? [];
        const taken = await Promise.all(ids.map((id) => client.getCloudsnap(id)));
        context.emit(taken.length === 1 ? taken[0] : { cloudsnaps: taken }, () => {
          for (const c of taken) {
            print(
              `cloudsnap ${c.id} of volume "${c.volumeName}" taken: ${c.incremental ? "incremental" : "full"}, uploaded ${cloudsnapUploaded(c)}`,
            );
          }
        });
      },
    );

  cloudsnap
    .command("list")
    .alias("ls")
    .description("list a volume's cloudsnaps, oldest first (another cluster's volume: give its id)")
    .argument("<volume>", "volume name, or the id of a volume in the bucket")
    .action(async (volume: string, _options: object, command: Command) => {
      const context = contextOf(command);
      const cloudsnaps = await (await context.client()).listCloudsnaps(nameArg(volume, "volume"));
      context.emit({ cloudsnaps }, () =>
        print(cloudsnaps.length === 0 ? `No cloudsnaps of volume "${volume}".` : cloudsnapTable(cloudsnaps)),
      );
    });

  cloudsnap
    .command("show")
    .description("describe a cloudsnap: its volume, size, what it read and uploaded")
    .argument("<id>", "cloudsnap id")
    .action(async (id: string, _options: object, command: Command) => {
      const context = contextOf(command);
      const found = await (await context.client()).getCloudsnap(id);
      context.emit(found, (c) => print(cloudsnapDescription(c)));
    });

  cloudsnap
    .command("delete")
    .alias("rm")
    .description("delete a cloudsnap, and the data no other cloudsnap of its volume needs")
    .argument("<id>", "cloudsnap id")
    .action(async (id: string, _options: object, command: Command) => {
      const context = contextOf(command);
      const client = await context.client();
      const deleted = await withProgress(`deleting cloudsnap ${id}`, () => client.deleteCloudsnap(id));
      context.emit(deleted, (c) => print(`cloudsnap ${c.id} deleted`));
    });

  cloudsnap
    .command("restore")
    .description("create a new volume from a cloudsnap, in this cluster (an operation)")
    .argument("<id>", "cloudsnap id")
    .requiredOption("--to <name>", "name of the new volume")
    .option("--repl <n>", "its replication factor (default: the cloudsnap's volume's)", replicationArg)
    .option("--label <key=value>", "label the new volume (repeatable)", labelArg)
    .option(
      "--selector <key=value>",
      "place its replicas only on nodes with this label (repeatable)",
      labelArg,
    )
    .option(
      "--workflow",
      "run it as the restore workflow (Step Functions), which also puts a Strata Restore Completed or Failed event",
    )
    .option(...WAIT_OPTION)
    .action(
      async (
        id: string,
        options: {
          to: string;
          repl?: number;
          label?: Record<string, string>;
          selector?: Record<string, string>;
          workflow?: boolean;
          wait?: boolean;
        },
        command: Command,
      ) => {
        const context = contextOf(command);
        const client = await context.client();
        const target = nameArg(options.to, "volume");
        const restoreParams = {
          ...(options.repl === undefined ? {} : { replicationFactor: options.repl }),
          ...(options.label === undefined ? {} : { labels: options.label }),
          ...(options.selector === undefined ? {} : { nodeSelector: options.selector }),
        };
        const restored = async (warnings: readonly string[] = []) => {
          const volume = await client.getVolume(target);
          context.emit(volume, (v) => {
            print(`volume "${v.name}" restored from cloudsnap ${id} (${v.replicas.length} replicas)`);
            for (const warning of warnings) warn(warning);
          });
        };
        if (options.workflow === true) {
          const request = { cloudsnap: id, volume: target, ...restoreParams };
          const startedAt = new Date();
          const name = restoreExecutionName(target, startedAt);
          await withWorkflows(context, async (source) => {
            const executionArn = await source.start("restore", name, request);
            if (options.wait === true) {
              await followRestoreWorkflow(source, client, executionArn, request, startedAt);
              return restored();
            }
            context.emit({ execution: name, executionArn }, () =>
              print(
                `restore workflow started: execution ${name} (follow it with \`strata workflow show ${name}\`)`,
              ),
            );
          });
          return;
        }
        const started = await client.startOperation({
          kind: "restore",
          volume: target,
          requestToken: `restore-${target}-${randomUUID()}`,
          params: { cloudsnap: id, ...restoreParams },
        });
        if (options.wait !== true) {
          context.emit(started, (op) => print(startedLine(op)));
          return;
        }
        await restored((await followOperation(client, started.id)).warnings);
      },
    );

  return cloudsnap;
}

function startedLine(operation: Operation): string {
  return `${operation.kind} of ${operation.volumeName} started: operation ${operation.id} (follow it with \`strata operation wait ${operation.id}\`)`;
}

function cloudsnapUploaded(cloudsnap: { uploadedBytes: number; newChunks: number; chunks: number }): string {
  return `${formatSize(cloudsnap.uploadedBytes)} (${cloudsnap.newChunks} new of ${cloudsnap.chunks} chunks)`;
}
