import { PutCommand } from "@aws-sdk/lib-dynamodb";
import { ZONES_PARTITION, zoneKey } from "./keys.js";
import { ZoneRecord } from "./records.js";
import { type StateTable, validateInput } from "./table-client.js";

/** Zone availability for placement; a zone without a record is available. */
export class ZoneStore {
  constructor(private readonly table: StateTable) {}

  /** Unconditional: marking twice is marking once, and the last workflow to decide is right. */
  async mark(zone: string, available: boolean, reason: string): Promise<ZoneRecord> {
    const record = validateInput(
      ZoneRecord,
      { zone, available, reason, changedAt: this.table.now() },
      "zone",
    );
    await this.table.doc.send(
      new PutCommand({ TableName: this.table.tableName, Item: { ...zoneKey(zone), ...record } }),
    );
    return record;
  }

  list(): Promise<ZoneRecord[]> {
    return this.table.queryPartition(ZONES_PARTITION, ZoneRecord, "zone");
  }

  /** The zones placement must avoid now. */
  async unavailable(): Promise<Set<string>> {
    return new Set((await this.list()).filter((record) => !record.available).map((record) => record.zone));
  }
}
