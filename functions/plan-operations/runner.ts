import type { NodeRecord, VolumeRecord } from "../../core/state/records.js";

/**
 * Where a change of `volume` runs: on the node it is attached to when that node is alive (its
 * coordinator makes the change), else on a live node holding one of its replicas in sync, which
 * takes it over for maintenance (a rebuilding one holds only part of the data, so last).
 */
export function runnerFor(volume: VolumeRecord, alive: ReadonlySet<string>): string | undefined {
  if (volume.attachedNode !== null && alive.has(volume.attachedNode)) return volume.attachedNode;
  const holders = volume.replicas.filter((replica) => alive.has(replica.node) && replica.state !== "failed");
  return (holders.find((replica) => replica.state === "in-sync") ?? holders[0])?.node;
}

/** Why no node can run a change of `volume`, replica by replica. */
export function noRunnerReason(
  volume: VolumeRecord,
  nodes: readonly NodeRecord[],
  lost: ReadonlySet<string>,
): string {
  const where = volume.replicas.map((replica) => {
    const known = nodes.some((candidate) => candidate.id === replica.node);
    const status = lost.has(replica.node) ? "lost" : known ? "down" : "unknown node";
    return `${replica.node} (${replica.state}, ${status})`;
  });
  return `no live node holds a replica of it: ${where.join(", ")}`;
}
