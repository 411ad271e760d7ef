import { randomUUID } from "node:crypto";
import { DeleteCommand, PutCommand } from "@aws-sdk/lib-dynamodb";
import { RecordExistsError, RecordNotFoundError } from "./errors.js";
import { snapshotKey, snapshotsPartition } from "./keys.js";
import { SnapshotRecord } from "./records.js";
import { isConditionFailure, type StateTable, validateInput } from "./table-client.js";

export interface NewSnapshot {
  /** The id every replica records the snapshot under, when the coordinator already chose it. */
  id?: string;
  volumeId: string;
  name: string;
  sizeBytes: number;
  /** When it was taken, if earlier than now (a snapshot carried over from a replica). */
  createdAt?: string;
}

/** Snapshot records, kept per volume: the key is the name, so a name is taken once per volume. */
export class SnapshotStore {
  constructor(private readonly table: StateTable) {}

  async create(request: NewSnapshot): Promise<SnapshotRecord> {
    const snapshot = validateInput(
      SnapshotRecord,
      { ...request, id: request.id ?? randomUUID(), createdAt: request.createdAt ?? this.table.now() },
      "snapshot",
    );
    try {
      await this.table.doc.send(
        new PutCommand({
          TableName: this.table.tableName,
          Item: { ...snapshotKey(snapshot.volumeId, snapshot.name), ...snapshot },
          ConditionExpression: "attribute_not_exists(pk)",
        }),
      );
    } catch (error) {
      if (isConditionFailure(error)) throw new RecordExistsError(describe(snapshot.volumeId, snapshot.name));
      throw error;
    }
    return snapshot;
  }

  async get(volumeId: string, name: string): Promise<SnapshotRecord> {
    const snapshot = await this.table.get(snapshotKey(volumeId, name), SnapshotRecord, "snapshot");
    if (snapshot === undefined) throw new RecordNotFoundError(describe(volumeId, name));
    return snapshot;
  }

  list(volumeId: string): Promise<SnapshotRecord[]> {
    return this.table.queryPartition(snapshotsPartition(volumeId), SnapshotRecord, "snapshot");
  }

  async delete(volumeId: string, name: string): Promise<void> {
    try {
      await this.table.doc.send(
        new DeleteCommand({
          TableName: this.table.tableName,
          Key: snapshotKey(volumeId, name),
          ConditionExpression: "attribute_exists(pk)",
        }),
      );
    } catch (error) {
      if (isConditionFailure(error)) throw new RecordNotFoundError(describe(volumeId, name));
      throw error;
    }
  }
}

const describe = (volumeId: string, name: string) => `snapshot "${name}" of volume ${volumeId}`;
