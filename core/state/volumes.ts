import { randomUUID } from "node:crypto";
import { DeleteCommand, PutCommand, UpdateCommand } from "@aws-sdk/lib-dynamodb";
import type { Labels, Replica } from "../model.js";
import { EpochConflictError, RecordNotFoundError } from "./errors.js";
import { VOLUMES_PARTITION, volumeKey } from "./keys.js";
import { VolumeNames } from "./names.js";
import { VolumeChange, VolumeRecord } from "./records.js";
import { isConditionFailure, parseStored, type StateTable, validateInput } from "./table-client.js";

export interface NewVolume {
  /** Chosen by the caller when the replicas must exist (named by it) before the record does. */
  id?: string;
  name: string;
  sizeBytes: number;
  replicationFactor: number;
  labels?: Labels;
  nodeSelector?: Labels;
  /** The replicas placement chose; they start at the volume's first epoch. */
  replicas?: Replica[];
}

/** A new volume's first epoch; 0 is left to mean "never saw this volume" to replicas. */
export const FIRST_EPOCH = 1;

/**
 * Volumes. The replica set and the attachment change only through `updateIfEpoch`, a conditional
 * write on the epoch the caller read that bumps it: of two writers that read the same epoch exactly
 * one wins, and the other gets an EpochConflictError (DESIGN.md invariants 4, 5).
 */
export class VolumeStore {
  private readonly names: VolumeNames;

  constructor(private readonly table: StateTable) {
    this.names = new VolumeNames(table, (volumeId) => this.find(volumeId));
  }

  /**
   * Reserves the name, then writes the volume. Without transactions the two writes are not atomic, so
   * a failed volume write gives the name back; a crash in between leaves a reservation that
   * VolumeNames recognises as abandoned and lets a later create take over.
   */
  async create(request: NewVolume): Promise<VolumeRecord> {
    const now = this.table.now();
    const volume = validateInput(
      VolumeRecord,
      {
        id: request.id ?? randomUUID(),
        name: request.name,
        sizeBytes: request.sizeBytes,
        replicationFactor: request.replicationFactor,
        labels: request.labels ?? {},
        nodeSelector: request.nodeSelector ?? {},
        epoch: FIRST_EPOCH,
        replicas: request.replicas ?? [],
        attachedNode: null,
        createdAt: now,
        updatedAt: now,
      },
      "volume",
    );
    await this.names.reserve(volume.name, volume.id);
    try {
      await this.table.doc.send(
        new PutCommand({
          TableName: this.table.tableName,
          Item: { ...volumeKey(volume.id), ...volume },
          ConditionExpression: "attribute_not_exists(pk)",
        }),
      );
    } catch (error) {
      await this.names.release(volume.name, volume.id);
      throw error;
    }
    return volume;
  }

  async get(volumeId: string): Promise<VolumeRecord> {
    const volume = await this.find(volumeId);
    if (volume === undefined) throw new RecordNotFoundError(`volume ${volumeId}`);
    return volume;
  }

  async getByName(name: string): Promise<VolumeRecord> {
    const volumeId = await this.names.lookup(name);
    const volume = volumeId === undefined ? undefined : await this.find(volumeId);
    if (volume === undefined) throw new RecordNotFoundError(`volume "${name}"`);
    return volume;
  }

  list(): Promise<VolumeRecord[]> {
    return this.table.queryPartition(VOLUMES_PARTITION, VolumeRecord, "volume");
  }

  /**
   * Compare-and-swap: applies `change` only if the volume is still at `expectedEpoch`, and moves it to
   * `expectedEpoch + 1`. Returns the volume as written.
   */
  async updateIfEpoch(volumeId: string, expectedEpoch: number, change: VolumeChange): Promise<VolumeRecord> {
    const fields = Object.entries(validateInput(VolumeChange, change, "volume change")).filter(
      ([, value]) => value !== undefined,
    );
    const names: Record<string, string> = { "#epoch": "epoch", "#updatedAt": "updatedAt" };
    const values: Record<string, unknown> = {
      ":expected": expectedEpoch,
      ":next": expectedEpoch + 1,
      ":now": this.table.now(),
    };
    const assignments = ["#epoch = :next", "#updatedAt = :now"];
    for (const [field, value] of fields) {
      names[`#${field}`] = field;
      values[`:${field}`] = value;
      assignments.push(`#${field} = :${field}`);
    }
    try {
      const { Attributes } = await this.table.doc.send(
        new UpdateCommand({
          TableName: this.table.tableName,
          Key: volumeKey(volumeId),
          UpdateExpression: `SET ${assignments.join(", ")}`,
          ConditionExpression: "#epoch = :expected",
          ExpressionAttributeNames: names,
          ExpressionAttributeValues: values,
          ReturnValues: "ALL_NEW",
        }),
      );
      return parseStored(VolumeRecord, Attributes ?? {}, "volume");
    } catch (error) {
      if (isConditionFailure(error)) throw await this.conflict(volumeId, expectedEpoch);
      throw error;
    }
  }

  /**
   * Deletes the volume if it is still at `expectedEpoch` (nobody attached or re-replicated it since),
   * then frees its name. Its snapshot records are the caller's to delete first: they live in their
   * own partition, and without transactions one write cannot take them along.
   */
  async delete(volumeId: string, expectedEpoch: number): Promise<void> {
    let deleted: Record<string, unknown> | undefined;
    try {
      ({ Attributes: deleted } = await this.table.doc.send(
        new DeleteCommand({
          TableName: this.table.tableName,
          Key: volumeKey(volumeId),
          ConditionExpression: "#epoch = :expected",
          ExpressionAttributeNames: { "#epoch": "epoch" },
          ExpressionAttributeValues: { ":expected": expectedEpoch },
          ReturnValues: "ALL_OLD",
        }),
      ));
    } catch (error) {
      if (isConditionFailure(error)) throw await this.conflict(volumeId, expectedEpoch);
      throw error;
    }
    const name = deleted?.["name"];
    if (typeof name === "string") await this.names.release(name, volumeId);
  }

  private find(volumeId: string): Promise<VolumeRecord | undefined> {
    return this.table.get(volumeKey(volumeId), VolumeRecord, "volume");
  }

  /** Why a conditional write on the epoch failed: the volume is gone, or another writer moved it on. */
  private async conflict(volumeId: string, expectedEpoch: number): Promise<Error> {
    const current = await this.find(volumeId);
    if (current === undefined) return new RecordNotFoundError(`volume ${volumeId}`);
    return new EpochConflictError(volumeId, expectedEpoch, current.epoch);
  }
}
