import { DeleteCommand, PutCommand } from "@aws-sdk/lib-dynamodb";
import { RecordExistsError } from "./errors.js";
import { volumeNameKey } from "./keys.js";
import { VolumeNameRecord, type VolumeRecord } from "./records.js";
import { isConditionFailure, type StateTable } from "./table-client.js";

/**
 * How old a reservation whose volume does not exist must be before another create may take the name.
 * A create writes its volume right after reserving the name, and a delete releases the name right
 * after deleting the volume, so a younger reservation without a volume is one of those in flight; an
 * older one was left by a process that crashed in between. Generous, to allow for clock skew.
 */
export const ABANDONED_RESERVATION_MS = 5 * 60_000;

const NAME_IS_FREE = "attribute_not_exists(pk)";

/**
 * Volume name reservations: one item per name, created with attribute_not_exists, so of two creates
 * of one name exactly one wins without a transaction.
 */
export class VolumeNames {
  constructor(
    private readonly table: StateTable,
    private readonly findVolume: (volumeId: string) => Promise<VolumeRecord | undefined>,
  ) {}

  async lookup(name: string): Promise<string | undefined> {
    const reservation = await this.table.get(volumeNameKey(name), VolumeNameRecord, "volume name");
    return reservation?.volumeId;
  }

  /** Takes the name for `volumeId`, or throws RecordExistsError when a live volume (or create) holds it. */
  async reserve(name: string, volumeId: string): Promise<void> {
    if (await this.put(name, volumeId, NAME_IS_FREE)) return;
    const holder = await this.table.get(volumeNameKey(name), VolumeNameRecord, "volume name");
    // Released since our put (its delete finished): free again, though a racing create may win it.
    if (holder === undefined && (await this.put(name, volumeId, NAME_IS_FREE))) return;
    // Taken over only while it is still the abandoned reservation judged here, not a newer one.
    const abandoned = holder !== undefined && (await this.isAbandoned(holder));
    if (abandoned && (await this.put(name, volumeId, "volumeId = :holder", { ":holder": holder.volumeId })))
      return;
    throw new RecordExistsError(`volume "${name}"`);
  }

  /** Gives the name back, unless another volume has since taken it over. */
  async release(name: string, volumeId: string): Promise<void> {
    try {
      await this.table.doc.send(
        new DeleteCommand({
          TableName: this.table.tableName,
          Key: volumeNameKey(name),
          ConditionExpression: "volumeId = :volumeId",
          ExpressionAttributeValues: { ":volumeId": volumeId },
        }),
      );
    } catch (error) {
      if (!isConditionFailure(error)) throw error;
    }
  }

  /** A conditional put of the reservation; false when the condition refused it. */
  private async put(
    name: string,
    volumeId: string,
    condition: string,
    values?: Record<string, unknown>,
  ): Promise<boolean> {
    const reservation: VolumeNameRecord = { name, volumeId, createdAt: this.table.now() };
    try {
      await this.table.doc.send(
        new PutCommand({
          TableName: this.table.tableName,
          Item: { ...volumeNameKey(name), ...reservation },
          ConditionExpression: condition,
          ExpressionAttributeValues: values,
        }),
      );
      return true;
    } catch (error) {
      if (isConditionFailure(error)) return false;
      throw error;
    }
  }

  private async isAbandoned(holder: VolumeNameRecord): Promise<boolean> {
    const age = this.table.nowMs() - Date.parse(holder.createdAt);
    return age > ABANDONED_RESERVATION_MS && (await this.findVolume(holder.volumeId)) === undefined;
  }
}
