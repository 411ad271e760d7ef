/**
 * The key design of the one cluster-state table (partition key `pk`, sort key `sk`, both strings).
 *
 * Each kind of record lives in a collection partition, one item per member:
 *
 * | record           | pk                    | sk                 |
 * | ---------------- | --------------------- | ------------------ |
 * | node             | `NODES`               | `NODE#<nodeId>`     |
 * | volume           | `VOLUMES`             | `VOLUME#<volumeId>` |
 * | volume name      | `VOLUME_NAMES`        | `NAME#<name>`       |
 * | snapshot         | `SNAPSHOTS#<volumeId>`| `SNAPSHOT#<name>`   |
 * | operation        | `OPERATIONS`          | `OPERATION#<id>`    |
 * | operation token  | `OPERATION_TOKENS`    | `TOKEN#<token>`     |
 * | queued operation | `QUEUE#<nodeId>`      | `OPERATION#<id>`    |
 * | zone             | `ZONES`               | `ZONE#<zone>`       |
 * | health verdict   | `HEALTH`              | `NODE#<id>`, `ZONE#<zone>` |
 * | lease            | `LEASES`              | `LEASE#<name>`      |
 * | schedule policy  | `POLICIES`            | `POLICY#<name>`     |
 * | policy assignment| `POLICY_ASSIGNMENTS`  | `VOLUME#<volumeId>` |
 *
 * Why collections rather than one partition per item: listing (every node for placement, every volume
 * for the health sweep and the CLI) is then a Query of one partition, which can be strongly
 * consistent and needs no Scan or secondary index (an index is only eventually consistent). The
 * collections stay far inside one partition's throughput: nodes heartbeat every few seconds, and
 * volumes change only on replica-set, attachment or resize events. The prefixes in `sk` keep a raw
 * dump of the table readable and leave room for later records in the same partitions.
 *
 * Operations: finished ones expire (TTL on `expiresAt`), which keeps their collection small, and
 * listing one volume's or one node's filters that one Query. The read made most often, each node's
 * poll for its own work every second, reads only the node's queue: one item per unfinished operation.
 *
 * Policy assignments are a collection of their own rather than a field of the volume record: the
 * cloudsnap workflow reads every assigned volume with one Query of that partition (volumes without
 * a policy cost nothing), and assigning one is not a change of the volume's replica set, so it
 * neither bumps nor races with the volume's epoch.
 */
export interface ItemKey {
  pk: string;
  sk: string;
}

export const NODES_PARTITION = "NODES";
export const VOLUMES_PARTITION = "VOLUMES";
export const VOLUME_NAMES_PARTITION = "VOLUME_NAMES";

export const nodeKey = (nodeId: string): ItemKey => ({ pk: NODES_PARTITION, sk: `NODE#${nodeId}` });
export const volumeKey = (volumeId: string): ItemKey => ({ pk: VOLUMES_PARTITION, sk: `VOLUME#${volumeId}` });
export const volumeNameKey = (name: string): ItemKey => ({ pk: VOLUME_NAMES_PARTITION, sk: `NAME#${name}` });
export const snapshotsPartition = (volumeId: string): string => `SNAPSHOTS#${volumeId}`;
export const snapshotKey = (volumeId: string, name: string): ItemKey => ({
  pk: snapshotsPartition(volumeId),
  sk: `SNAPSHOT#${name}`,
});

export const OPERATIONS_PARTITION = "OPERATIONS";
export const operationKey = (operationId: string): ItemKey => ({
  pk: OPERATIONS_PARTITION,
  sk: `OPERATION#${operationId}`,
});
export const operationTokenKey = (requestToken: string): ItemKey => ({
  pk: "OPERATION_TOKENS",
  sk: `TOKEN#${requestToken}`,
});
export const operationQueuePartition = (nodeId: string): string => `QUEUE#${nodeId}`;
export const queuedOperationKey = (nodeId: string, operationId: string): ItemKey => ({
  pk: operationQueuePartition(nodeId),
  sk: `OPERATION#${operationId}`,
});

export const ZONES_PARTITION = "ZONES";
export const zoneKey = (zone: string): ItemKey => ({ pk: ZONES_PARTITION, sk: `ZONE#${zone}` });
export const HEALTH_PARTITION = "HEALTH";
/** `subject` is "NODE#<id>" or "ZONE#<zone>" (see healthSubject). */
export const healthKey = (subject: string): ItemKey => ({ pk: HEALTH_PARTITION, sk: subject });
export const LEASES_PARTITION = "LEASES";
export const leaseKey = (name: string): ItemKey => ({ pk: LEASES_PARTITION, sk: `LEASE#${name}` });
export const POLICIES_PARTITION = "POLICIES";
export const policyKey = (name: string): ItemKey => ({ pk: POLICIES_PARTITION, sk: `POLICY#${name}` });
export const POLICY_ASSIGNMENTS_PARTITION = "POLICY_ASSIGNMENTS";
export const policyAssignmentKey = (volumeId: string): ItemKey => ({
  pk: POLICY_ASSIGNMENTS_PARTITION,
  sk: `VOLUME#${volumeId}`,
});
