import { DeleteCommand, PutCommand } from "@aws-sdk/lib-dynamodb";
import { conflict } from "../errors.js";
import { leaseKey } from "./keys.js";
import { LeaseRecord } from "./records.js";
import { isConditionFailure, type StateTable, validateInput } from "./table-client.js";

/** Leases (records.ts, LeaseRecord) over conditional writes: of two acquirers, one wins. */
export class LeaseStore {
  constructor(private readonly table: StateTable) {}

  /**
   * Takes the lease for `ttlMs` if it is free, expired, or `holder`'s already (which renews it).
   * Refused with a sentence naming the holder otherwise.
   */
  async acquire(name: string, holder: string, ttlMs: number): Promise<LeaseRecord> {
    const now = this.table.nowMs();
    const record = validateInput(
      LeaseRecord,
      {
        name,
        holder,
        acquiredAt: new Date(now).toISOString(),
        expiresAt: new Date(now + ttlMs).toISOString(),
      },
      "lease",
    );
    try {
      await this.table.doc.send(
        new PutCommand({
          TableName: this.table.tableName,
          Item: { ...leaseKey(name), ...record },
          ConditionExpression: "attribute_not_exists(pk) OR expiresAt < :now OR holder = :holder",
          ExpressionAttributeValues: { ":now": record.acquiredAt, ":holder": holder },
        }),
      );
    } catch (error) {
      if (!isConditionFailure(error)) throw error;
      const current = await this.table.get(leaseKey(name), LeaseRecord, "lease");
      throw conflict(
        `${name} is in use by ${current?.holder ?? "another holder"} until ${current?.expiresAt ?? "it is released"}`,
      );
    }
    return record;
  }

  /** Who holds the lease now; undefined when it is free or expired. */
  async holder(name: string): Promise<string | undefined> {
    const current = await this.table.get(leaseKey(name), LeaseRecord, "lease");
    if (current === undefined || Date.parse(current.expiresAt) < this.table.nowMs()) return undefined;
    return current.holder;
  }

  /** Gives the lease up; a lease another holder took meanwhile is left alone. */
  async release(name: string, holder: string): Promise<void> {
    try {
      await this.table.doc.send(
        new DeleteCommand({
          TableName: this.table.tableName,
          Key: leaseKey(name),
          ConditionExpression: "holder = :holder",
          ExpressionAttributeValues: { ":holder": holder },
        }),
      );
    } catch (error) {
      if (!isConditionFailure(error)) throw error;
    }
  }
}

/** What work under a lease can ask of it. */
export interface HeldLease {
  /** Renews the lease, or throws if it was lost (expired and taken): call before a write that needs it. */
  confirm(): Promise<void>;
}

/**
 * Runs `work` holding the lease, renewing it every third of its time to live, and releases it
 * after. The lease's time to live bounds how long a holder that died blocks the next one.
 */
export async function underLease<T>(
  leases: LeaseStore,
  lease: { name: string; holder: string; ttlMs: number },
  work: (held: HeldLease) => Promise<T>,
): Promise<T> {
  const { name, holder, ttlMs } = lease;
  await leases.acquire(name, holder, ttlMs);
  let lost: unknown;
  const renewals = setInterval(() => {
    leases.acquire(name, holder, ttlMs).catch((error: unknown) => {
      lost ??= error;
    });
  }, ttlMs / 3);
  const confirm = async () => {
    if (lost !== undefined) throw lost;
    await leases.acquire(name, holder, ttlMs);
  };
  try {
    return await work({ confirm });
  } finally {
    clearInterval(renewals);
    // A release that fails (the table unreachable) must not hide the work's own outcome: the
    // lease then ends when it expires.
    await leases.release(name, holder).catch(() => undefined);
  }
}
