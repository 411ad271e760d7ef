import type { NodeRecord } from "../core/state/records.js";
import type { Logger } from "./log.js";
import type { ClusterSecret } from "./replication/auth.js";
import { connectReplica, type ReplicaClient } from "./replication/client.js";
import { type ReplicaHandle, remoteReplicaHandle } from "./replication/replica-handle.js";

/**
 * Replicas on other nodes, reached over the authenticated replication protocol at the address each
 * node registered. Control calls (create, delete) use a connection of their own and close it; a
 * coordinator's handle keeps its connection for the life of the attachment.
 */
export class PeerReplicas {
  constructor(
    private readonly secret: ClusterSecret,
    private readonly log: Logger,
  ) {}

  private connect(node: NodeRecord): Promise<ReplicaClient> {
    const colon = node.addresses.replication.lastIndexOf(":");
    return connectReplica({
      host: node.addresses.replication.slice(0, colon),
      port: Number(node.addresses.replication.slice(colon + 1)),
      secret: this.secret,
      log: this.log,
    });
  }

  async call<T>(node: NodeRecord, work: (client: ReplicaClient) => Promise<T>): Promise<T> {
    const client = await this.connect(node);
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
