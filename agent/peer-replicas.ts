import { StrataError } from "../core/errors.js";
import type { NodeRecord } from "../core/state/records.js";
import type { Logger } from "./log.js";
import { connectReplica, type ReplicaClient } from "./replication/client.js";
import { type ReplicaHandle, remoteReplicaHandle } from "./replication/replica-handle.js";
import type { ClusterSecret } from "./replication/wire/auth.js";

/**
 * How long a peer may take over creating or deleting a replica. These fsync files and directories,
 * which on a disk busy with a crashed writer's dirty pages can take seconds; the data path's much
 * shorter timeout exists to notice dead replicas fast, which control calls do not need.
 */
const CONTROL_TIMEOUT_MS = 30_000;

/**
 * Replicas on other nodes, reached over the authenticated replication protocol at the address each
 * node registered. Control calls (create, delete) use a connection of their own and close it; a
 * coordinator's handle keeps its connection for the life of the attachment.
 */
export class PeerReplicas {
  constructor(
    /** Undefined on an agent started without the cluster secret: it reaches no peer. */
    private readonly secret: ClusterSecret | undefined,
    private readonly log: Logger,
  ) {}

  private connect(node: NodeRecord, timeoutMs?: number): Promise<ReplicaClient> {
    if (this.secret === undefined) {
      throw new StrataError(
        "UNAVAILABLE",
        `this agent runs without the cluster secret (STRATA_CLUSTER_SECRET), so it cannot reach replicas on ${node.id}`,
      );
    }
    const colon = node.addresses.replication.lastIndexOf(":");
    return connectReplica({
      host: node.addresses.replication.slice(0, colon),
      port: Number(node.addresses.replication.slice(colon + 1)),
      secret: this.secret,
      log: this.log,
      ...(timeoutMs === undefined ? {} : { timeoutMs }),
    });
  }

  async call<T>(node: NodeRecord, work: (client: ReplicaClient) => Promise<T>): Promise<T> {
    const client = await this.connect(node, CONTROL_TIMEOUT_MS);
    try {
      return await work(client);
    } finally {
      await client.close();
    }
  }

  async open(node: NodeRecord, volumeId: string): Promise<ReplicaHandle> {
    return remoteReplicaHandle(await this.connect(node), volumeId);
  }
}
