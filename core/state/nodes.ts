import { PutCommand, UpdateCommand } from "@aws-sdk/lib-dynamodb";
import { DriveSetHeldError, InstanceUnknownError, RecordNotFoundError } from "./errors.js";
import { NODES_PARTITION, nodeKey } from "./keys.js";
import { NodeRecord, NodeState } from "./records.js";
import { isConditionFailure, type StateTable, validateInput } from "./table-client.js";

export interface Heartbeat {
  /** The pool's free space now, so placement sees space used since registration. */
  freeBytes: number;
  /** The pool's provisioned bytes now, so placement sees volumes made since registration. */
  provisionedBytes?: number;
  /** The instance the agent runs on: the beat is refused if the node moved to another one. */
  instanceId?: string;
}

/** Node registration, heartbeats and the health sweep's verdicts. */
export class NodeStore {
  constructor(private readonly table: StateTable) {}

  /**
   * Registers a node, or re-registers it with what it reports now (addresses and pool can change when
   * an agent restarts): the agent is the authority on its own node. An agent on an instance claims
   * the node (its drive set) by a conditional write: refused with DriveSetHeldError while an agent
   * on another instance still heartbeats for it (within `heartbeatTimeoutMs`) and is not down. An
   * agent that names no instance is refused (InstanceUnknownError) a record that names one.
   */
  async register(node: NodeRecord, heartbeatTimeoutMs?: number): Promise<NodeRecord> {
    const record = validateInput(NodeRecord, node, "node");
    const claim =
      record.instanceId === undefined
        ? // An agent that does not know its instance cannot tell a restart of the agent holding the
          // node from a second agent on another instance: it may not overwrite a record naming one.
          { ConditionExpression: "attribute_not_exists(instanceId)" }
        : heartbeatTimeoutMs === undefined
          ? {}
          : {
              ConditionExpression:
                "attribute_not_exists(pk) OR attribute_not_exists(instanceId) OR instanceId = :instance OR " +
                "lastHeartbeat < :staleBefore OR #state = :down",
              ExpressionAttributeNames: { "#state": "state" },
              ExpressionAttributeValues: {
                ":instance": record.instanceId,
                ":staleBefore": new Date(this.table.nowMs() - heartbeatTimeoutMs).toISOString(),
                ":down": "down",
              },
            };
    try {
      await this.table.doc.send(
        new PutCommand({
          TableName: this.table.tableName,
          Item: { ...nodeKey(record.id), ...record },
          ...claim,
        }),
      );
    } catch (error) {
      if (!isConditionFailure(error)) throw error;
      const heldBy = (await this.get(record.id)).instanceId ?? "unknown";
      if (record.instanceId === undefined) throw new InstanceUnknownError(record.id, heldBy);
      throw new DriveSetHeldError(record.id, heldBy);
    }
    return record;
  }

  /**
   * Records that the node is alive and how much space it has, and answers the node's state. It does
   * not set the state back to up: a node marked down (node-loss fenced it) comes back through
   * `register`, which its agent calls when it reads `down` here.
   * With `instanceId`, only while the record still names that instance: an agent whose node was
   * taken over on another instance gets DriveSetHeldError and must stop serving it.
   */
  async heartbeat(nodeId: string, heartbeat: Heartbeat): Promise<NodeState> {
    const { provisionedBytes, instanceId } = heartbeat;
    const provisioned = provisionedBytes === undefined ? "" : ", #pool.#provisionedBytes = :provisioned";
    return this.updateExisting(
      nodeId,
      `SET #lastHeartbeat = :now, #pool.#freeBytes = :free${provisioned}`,
      {
        "#lastHeartbeat": "lastHeartbeat",
        "#pool": "pool",
        "#freeBytes": "freeBytes",
        ...(provisionedBytes === undefined ? {} : { "#provisionedBytes": "provisionedBytes" }),
      },
      {
        ":now": this.table.now(),
        ":free": heartbeat.freeBytes,
        ...(provisionedBytes === undefined ? {} : { ":provisioned": provisionedBytes }),
      },
      instanceId,
    );
  }

  async setState(nodeId: string, state: NodeState): Promise<void> {
    await this.updateExisting(nodeId, "SET #state = :state", { "#state": "state" }, { ":state": state });
  }

  async get(nodeId: string): Promise<NodeRecord> {
    const node = await this.table.get(nodeKey(nodeId), NodeRecord, "node");
    if (node === undefined) throw new RecordNotFoundError(`node ${nodeId}`);
    return node;
  }

  list(): Promise<NodeRecord[]> {
    return this.table.queryPartition(NODES_PARTITION, NodeRecord, "node");
  }

  /**
   * An update that must not create a half-filled node record for an id that never registered.
   * Attribute names always go through placeholders: "pool" and "state" are DynamoDB reserved words.
   */
  private async updateExisting(
    nodeId: string,
    updateExpression: string,
    names: Record<string, string>,
    values: Record<string, unknown>,
    instanceId?: string,
  ): Promise<NodeState> {
    const sameInstance = instanceId === undefined ? "" : " AND instanceId = :instance";
    try {
      const { Attributes } = await this.table.doc.send(
        new UpdateCommand({
          TableName: this.table.tableName,
          Key: nodeKey(nodeId),
          ReturnValues: "ALL_NEW",
          UpdateExpression: updateExpression,
          ConditionExpression: `attribute_exists(pk)${sameInstance}`,
          ExpressionAttributeValues: {
            ...values,
            ...(instanceId === undefined ? {} : { ":instance": instanceId }),
          },
          ExpressionAttributeNames: names,
        }),
      );
      return NodeState.parse(Attributes?.["state"]);
    } catch (error) {
      if (!isConditionFailure(error)) throw error;
      const current = await this.table.get(nodeKey(nodeId), NodeRecord, "node");
      if (current === undefined) throw new RecordNotFoundError(`node ${nodeId}`);
      throw new DriveSetHeldError(nodeId, current.instanceId ?? "unknown");
    }
  }
}
