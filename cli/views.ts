import type { Attachment, Snapshot, Volume } from "../core/model.js";
import type { Operation } from "../core/operations.js";
import type { SupervisedNodeView } from "../infra/local/control-protocol.js";
import type { ClusterVolume, NodeHealth, SharedFilesystem } from "./cluster-status.js";
import { formatAge, formatDuration, formatLabels, formatSize } from "./format.js";
import { type Cell, formatDetails, formatTable, indent } from "./output.js";

/** How each kind of object reads in a terminal. Pure functions of the API's answers. */

export function volumeTable(volumes: readonly Volume[], now = Date.now()): string {
  return formatTable(
    ["name", "size", "allocated", "attached", "replicas", "snapshots", "age"],
    volumes.map((volume) => [
      volume.name,
      formatSize(volume.sizeBytes),
      formatSize(volume.allocatedBytes),
      volume.attachedNode ?? "-",
      replicaSummary(volume),
      volume.snapshotCount,
      formatAge(volume.createdAt, now),
    ]),
  );
}

/** "1/1": in-sync replicas over all replicas, the number an operator checks first. */
function replicaSummary(volume: Volume): string {
  const inSync = volume.replicas.filter((replica) => replica.state === "in-sync").length;
  return `${inSync}/${volume.replicas.length}`;
}

export function volumeDescription(volume: Volume, snapshots: readonly Snapshot[], now = Date.now()): string {
  const fields: [string, Cell][] = [
    ["Name", volume.name],
    ["ID", volume.id],
    ["Size", `${formatSize(volume.sizeBytes)} (${volume.sizeBytes} bytes)`],
    ["Allocated", formatSize(volume.allocatedBytes)],
    ["Labels", formatLabels(volume.labels)],
    ["Created", `${volume.createdAt} (${formatAge(volume.createdAt, now)} ago)`],
    ["Epoch", volume.epoch],
    ["Attached", volume.attachedNode ?? "no"],
  ];
  if (volume.nbdUri) fields.push(["NBD URI", volume.nbdUri]);
  const replicas = formatTable(
    ["node", "zone", "state", "rebuild", "replica"],
    volume.replicas.map((replica) => [
      replica.node,
      replica.zone ?? "-",
      replica.state,
      replica.rebuild === undefined ? "-" : describeRebuild(replica.rebuild),
      replica.replicaId,
    ]),
  );
  const parts = [formatDetails(fields), `Replicas:\n${indent(replicas)}`];
  parts.push(
    snapshots.length === 0 ? "Snapshots:  <none>" : `Snapshots:\n${indent(snapshotTable(snapshots, now))}`,
  );
  return parts.join("\n");
}

export function snapshotTable(snapshots: readonly Snapshot[], now = Date.now()): string {
  return formatTable(
    ["name", "volume", "exclusive", "age"],
    snapshots.map((snapshot) => [
      snapshot.name,
      snapshot.volume,
      formatSize(snapshot.exclusiveBytes),
      formatAge(snapshot.createdAt, now),
    ]),
  );
}

/**
 * The nodes of `cluster status`: the store's verdict, the pool as the agent reports it live (or as
 * the store last heard it, for a node that does not answer), and when it last heartbeated.
 */
export function nodeTable(nodes: readonly NodeHealth[], now = Date.now()): string {
  return formatTable(
    ["node", "zone", "state", "volumes", "capacity", "used", "provisioned", "heartbeat", "api", "nbd"],
    nodes.map((node) => {
      const { live, pool } = node;
      const capacity = live?.pool.capacityBytes ?? pool?.capacityBytes;
      const used = live?.pool.usedBytes ?? (pool ? pool.capacityBytes - pool.freeBytes : undefined);
      const provisioned = live?.pool.provisionedBytes ?? pool?.provisionedBytes;
      return [
        node.id,
        node.zone,
        node.state,
        live?.volumeCount ?? "-",
        capacity === undefined ? "-" : formatSize(capacity),
        used === undefined ? "-" : formatSize(used),
        provisioned === undefined ? "-" : formatSize(provisioned),
        node.lastHeartbeat ? `${formatAge(node.lastHeartbeat, now)} ago` : "never",
        node.apiUrl,
        live?.nbdAddress ?? "-",
      ];
    }),
  );
}

/** e.g. "node-1, node-2, node-3 share one filesystem (79 GiB free)": one space, not three. */
export function sharedFilesystemLines(shared: readonly SharedFilesystem[]): string[] {
  return shared.map(
    ({ nodes, freeBytes }) => `${nodes.join(", ")} share one filesystem (${formatSize(freeBytes)} free)`,
  );
}

/** Every volume of the cluster with each replica's node and state, e.g. "node-1(in-sync) node-2(rebuilding)". */
export function clusterVolumeTable(
  volumes: readonly ClusterVolume[],
  nodes: readonly Pick<NodeHealth, "id" | "state">[],
): string {
  // A replica's recorded state is what its volume last knew; a node not up cannot serve it now.
  const stateOf = new Map(nodes.map((node) => [node.id, node.state]));
  const replicaCell = ({ node, state }: ClusterVolume["replicas"][number]) => {
    const nodeState = stateOf.get(node);
    return nodeState === undefined || nodeState === "up"
      ? `${node}(${state})`
      : `${node}(${state}, node ${nodeState})`;
  };
  return formatTable(
    ["volume", "size", "replicas", "epoch", "attached"],
    volumes.map((volume) => [
      volume.name,
      formatSize(volume.sizeBytes),
      volume.replicas.map(replicaCell).join(" "),
      volume.epoch,
      volume.attachedNode ?? "-",
    ]),
  );
}

/** The supervisor's view of its agent processes (`strata node list`). */
export function supervisedNodeTable(nodes: readonly SupervisedNodeView[]): string {
  return formatTable(
    ["node", "zone", "instance", "process", "pid", "api"],
    nodes.map((node) => [
      node.id,
      node.zone,
      node.instanceId ?? "-",
      node.process,
      node.pid ?? "-",
      node.apiUrl,
    ]),
  );
}

/** The attachment and one command that proves the export works. */
export function attachmentDescription(attachment: Attachment): string {
  const fields: [string, Cell][] = [
    ["Node", attachment.node],
    ["NBD URI", attachment.nbdUri],
  ];
  if (attachment.nbdUnixUri) fields.push(["Unix socket URI", attachment.nbdUnixUri]);
  return [
    `volume "${attachment.volume}" attached`,
    formatDetails(fields),
    "Try it:",
    indent(
      [
        `nbdinfo ${attachment.nbdUri}`,
        `qemu-io -f raw -c 'write -P 0xab 0 64k' -c 'read -P 0xab 0 64k' ${attachment.nbdUri}`,
      ].join("\n"),
    ),
  ].join("\n");
}

/** e.g. "resync 12 MiB / 40 MiB": what a rebuilding replica is getting and how far it has come. */
export function describeRebuild(rebuild: NonNullable<Volume["replicas"][number]["rebuild"]>): string {
  return `${rebuild.kind} ${formatSize(rebuild.copiedBytes)} / ${formatSize(rebuild.totalBytes)}`;
}

/** Operations, oldest first: what runs where, how far it has come, and what went wrong. */
export function operationTable(operations: readonly Operation[], now = Date.now()): string {
  return formatTable(
    ["id", "kind", "volume", "node", "state", "progress", "age", "duration", "error"],
    operations.map((operation) => [
      operation.id,
      operation.kind,
      operation.volumeName,
      operation.node,
      operation.stalled === null ? operation.state : `${operation.state} (stalled)`,
      describeOperationProgress(operation),
      formatAge(operation.createdAt, now),
      operationDuration(operation, now),
      operation.error ?? "-",
    ]),
  );
}

export function operationDescription(operation: Operation, now = Date.now()): string {
  const at = (time: string | null) => (time === null ? "-" : `${time} (${formatAge(time, now)} ago)`);
  const fields: [string, Cell][] = [
    ["ID", operation.id],
    ["Kind", operation.kind],
    ["Volume", `${operation.volumeName} (${operation.volumeId})`],
    ["Node", operation.node],
    ["State", operation.cancelRequested ? `${operation.state}, cancel requested` : operation.state],
  ];
  if (operation.stalled !== null) fields.push(["Stalled", operation.stalled]);
  fields.push(
    ["Progress", describeOperationProgress(operation)],
    ["Params", formatParams(operation.params)],
    ["Request token", operation.requestToken],
    ["Created", at(operation.createdAt)],
    ["Started", at(operation.startedAt)],
    ["Ended", at(operation.endedAt)],
    ["Duration", operationDuration(operation, now)],
  );
  if (operation.error !== null) fields.push(["Error", operation.error]);
  return formatDetails(fields);
}

/**
 * e.g. "12 MiB of 40 MiB (30%), 5 MiB/s, 6s left" while it runs; the rate and what is left are
 * left out once it has ended, when they would only describe its last seconds.
 */
export function describeOperationProgress(operation: Pick<Operation, "progress" | "state">): string {
  const { progress } = operation;
  if (progress === null) return "-";
  const percent =
    progress.bytesTotal > 0 ? ` (${Math.floor((100 * progress.bytesDone) / progress.bytesTotal)}%)` : "";
  const left =
    progress.bytesPerSecond > 0 && progress.bytesTotal > progress.bytesDone
      ? `, ${formatDuration((1000 * (progress.bytesTotal - progress.bytesDone)) / progress.bytesPerSecond)} left`
      : "";
  const rate = operation.state === "running" ? `, ${formatSize(progress.bytesPerSecond)}/s${left}` : "";
  return `${formatSize(progress.bytesDone)} of ${formatSize(progress.bytesTotal)}${percent}${rate}`;
}

/** How long it ran (or has run so far); "-" while it waits to start. */
function operationDuration(operation: Operation, now: number): string {
  if (operation.startedAt === null) return "-";
  return formatAge(operation.startedAt, operation.endedAt === null ? now : Date.parse(operation.endedAt));
}

/** "replicaId=r-2": params are flat scalars, read like labels. */
const formatParams = (params: Record<string, unknown>) =>
  formatLabels(Object.fromEntries(Object.entries(params).map(([key, value]) => [key, String(value)])));
