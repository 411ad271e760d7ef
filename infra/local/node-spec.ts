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
}

export interface LocalClusterLayout {
  dir: string;
  /** Base ports: node i listens on base + i, so several agents can share one host. */
  apiPort: number;
  nbdPort: number;
  /** 127.0.0.1 keeps NBD on loopback; 0.0.0.0 exports to other machines. */
  nbdHost: string;
  nodeCount: number;
}

/** The local zones, one per node, so placement (later) sees a multi-zone cluster on one machine. */
const LOCAL_ZONES = ["local-a", "local-b", "local-c"];

export function planLocalNodes(layout: LocalClusterLayout): NodeSpec[] {
  return Array.from({ length: layout.nodeCount }, (_, index) => {
    const id = `node-${index + 1}`;
    const dataDir = join(layout.dir, "nodes", id);
    return {
      id,
      zone: LOCAL_ZONES[index % LOCAL_ZONES.length]!,
      dataDir,
      api: { host: "127.0.0.1", port: offsetPort(layout.apiPort, index) },
      nbd: { host: layout.nbdHost, port: offsetPort(layout.nbdPort, index) },
      nbdSocket: join(dataDir, "nbd.sock"),
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
  ];
}
