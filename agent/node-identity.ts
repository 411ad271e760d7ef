import type { Attachment, NodeStatus, PoolUsage } from "../core/model.js";

export interface NodeIdentity {
  nodeId: string;
  zone: string;
  version: string;
  startedAt: string;
}

export interface Endpoints {
  apiUrl: string;
  /** host:port of the NBD TCP listener. */
  nbdAddress: string;
  nbdSocket: string | null;
}

/** How to reach a volume attached to this node over NBD, by TCP and by Unix socket. */
export function describeAttachment(identity: NodeIdentity, endpoints: Endpoints, volume: string): Attachment {
  const { nbdAddress, nbdSocket } = endpoints;
  return {
    volume,
    node: identity.nodeId,
    nbdUri: `nbd://${nbdAddress}/${volume}`,
    nbdUnixUri: nbdSocket ? `nbd+unix:///${volume}?socket=${nbdSocket}` : null,
  };
}

/** This node as the control API shows it. */
export function describeNode(
  identity: NodeIdentity,
  endpoints: Endpoints,
  pool: PoolUsage,
  volumeCount: number,
): NodeStatus {
  return {
    id: identity.nodeId,
    zone: identity.zone,
    state: "up",
    version: identity.version,
    ...endpoints,
    pool,
    volumeCount,
    startedAt: identity.startedAt,
  };
}

/** "snap-20261121-193012", with a suffix when two snapshots are taken within one second. */
export function defaultSnapshotName(taken: ReadonlySet<string>): string {
  const stamp = new Date().toISOString().replace(/[-:]/g, "").replace("T", "-").slice(0, 15);
  let name = `snap-${stamp}`;
  for (let n = 2; taken.has(name); n++) name = `snap-${stamp}-${n}`;
  return name;
}
