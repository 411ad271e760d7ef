import type { Attachment, NodeStatus, Snapshot, Volume } from "../core/model.js";
import { formatAge, formatLabels, formatSize } from "./format.js";
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
    ["node", "state", "replica"],
    volume.replicas.map((replica) => [replica.node, replica.state, replica.replicaId]),
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

/** A node of cluster.json with what its agent said, or why it said nothing. */
export type NodeReport =
  | { id: string; zone: string; apiUrl: string; status: NodeStatus }
  | { id: string; zone: string; apiUrl: string; unreachable: string };

export function nodeTable(nodes: readonly NodeReport[], now = Date.now()): string {
  return formatTable(
    ["node", "zone", "state", "volumes", "capacity", "used", "provisioned", "api", "nbd", "age"],
    nodes.map((node) => {
      if ("unreachable" in node) {
        return [node.id, node.zone, "unreachable", "-", "-", "-", "-", node.apiUrl, "-", "-"];
      }
      const { status } = node;
      return [
        status.id,
        status.zone,
        status.state,
        status.volumeCount,
        formatSize(status.pool.capacityBytes),
        formatSize(status.pool.usedBytes),
        formatSize(status.pool.provisionedBytes),
        status.apiUrl,
        status.nbdAddress,
        formatAge(status.startedAt, now),
      ];
    }),
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
