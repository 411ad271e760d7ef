import { join } from "node:path";

export interface ListenAddress {
  host: string;
  /** 0: the agent picks a free port (tests); pinned to the chosen one after the first start. */
  port: number;
}

/** Everything the supervisor needs to start one agent; a cluster is a list of these. */
export interface NodeSpec {
  id: string;
  zone: string;
  dataDir: string;
  api: ListenAddress;
  nbd: ListenAddress;
  nbdSocket: string;
  /** Where the agent will serve the replication protocol; recorded in its registration. */
  replication: ListenAddress;
  /** The cluster-state table the agent registers in (the endpoint reaches it through its environment). */
  stateTable: string;
}

export interface LocalClusterLayout {
  dir: string;
  /** Base ports: node i listens on base + i, so several agents can share one host. */
  apiPort: number;
  nbdPort: number;
  replicationPort: number;
  /** 127.0.0.1 keeps NBD on loopback; 0.0.0.0 exports to other machines. */
  nbdHost: string;
  nodeCount: number;
  /** Nodes are dealt round-robin over this many zones: 3 nodes in 2 zones put two in local-a. */
  zoneCount: number;
  stateTable: string;
}

/** local-a, local-b, ...: zone names that read as what they are on one machine. */
export const MAX_LOCAL_ZONES = 26;
export const localZone = (index: number) => `local-${String.fromCharCode(97 + index)}`;

export function planLocalNodes(layout: LocalClusterLayout): NodeSpec[] {
  if (layout.zoneCount < 1 || layout.zoneCount > MAX_LOCAL_ZONES)
    throw new Error(`a local cluster has 1 to ${MAX_LOCAL_ZONES} zones, not ${layout.zoneCount}`);
  return Array.from({ length: layout.nodeCount }, (_, index) => {
    const id = `node-${index + 1}`;
    const dataDir = join(layout.dir, "nodes", id);
    return {
      id,
      zone: localZone(index % layout.zoneCount),
      dataDir,
      api: { host: "127.0.0.1", port: offsetPort(layout.apiPort, index) },
      nbd: { host: layout.nbdHost, port: offsetPort(layout.nbdPort, index) },
      nbdSocket: join(dataDir, "nbd.sock"),
      replication: { host: "127.0.0.1", port: offsetPort(layout.replicationPort, index) },
      stateTable: layout.stateTable,
    };
  });
}

const offsetPort = (base: number, index: number) => (base === 0 ? 0 : base + index);

/** The agent's command line for a spec (see agent/main.ts). */
export function agentArguments(spec: NodeSpec): string[] {
  return [
    "--data-dir",
    spec.dataDir,
    "--node-id",
    spec.id,
    "--zone",
    spec.zone,
    "--api-listen",
    `${spec.api.host}:${spec.api.port}`,
    "--nbd-listen",
    `${spec.nbd.host}:${spec.nbd.port}`,
    "--nbd-socket",
    spec.nbdSocket,
    "--replication-listen",
    `${spec.replication.host}:${spec.replication.port}`,
    "--state-table",
    spec.stateTable,
  ];
}
