import { ConditionalCheckFailedException } from "@aws-sdk/client-dynamodb";
import { type DynamoDBDocumentClient, GetCommand, paginateQuery } from "@aws-sdk/lib-dynamodb";
import { z } from "zod";
import { invalid } from "../errors.js";
import type { ItemKey } from "./keys.js";

/**
 * What the per-record stores share: the document client, the table, the clock, and reads that parse
 * what they return. Reads are strongly consistent because every caller of the store is about to make
 * a decision (compare-and-swap, placement) on what it read.
 */
export class StateTable {
  constructor(
    readonly doc: DynamoDBDocumentClient,
    readonly tableName: string,
    private readonly clock: () => Date,
  ) {}

  now(): string {
    return this.clock().toISOString();
  }

  nowMs(): number {
    return this.clock().getTime();
  }

  async get<T>(key: ItemKey, schema: z.ZodType<T>, what: string): Promise<T | undefined> {
    const { Item } = await this.doc.send(
      new GetCommand({ TableName: this.tableName, Key: key, ConsistentRead: true }),
    );
    return Item === undefined ? undefined : parseStored(schema, Item, what);
  }

  /** Every item of one partition, across as many pages as it takes. */
  async queryPartition<T>(pk: string, schema: z.ZodType<T>, what: string): Promise<T[]> {
    const records: T[] = [];
    const pages = paginateQuery(
      { client: this.doc },
      {
        TableName: this.tableName,
        KeyConditionExpression: "pk = :pk",
        ExpressionAttributeValues: { ":pk": pk },
        ConsistentRead: true,
      },
    );
    for await (const page of pages) {
      for (const item of page.Items ?? []) records.push(parseStored(schema, item, what));
    }
    return records;
  }
}

/** True when a write was refused by its ConditionExpression: the expected state was not there. */
export function isConditionFailure(error: unknown): boolean {
  return error instanceof ConditionalCheckFailedException;
}

/**
 * Validates what a caller asks to write; a bad request is the caller's mistake (INVALID_ARGUMENT),
 * told in one sentence naming each field that is wrong and why, e.g.
 * `invalid schedule policy: schedules.interval.minutes must be at least 1 minute`.
 */
export function validateInput<T>(schema: z.ZodType<T>, value: unknown, what: string): T {
  const result = schema.safeParse(value);
  if (result.success) return result.data;
  const problems = result.error.issues.map((issue) => {
    const field = issue.path.map(String).join(".");
    return field === "" ? issue.message : `${field} ${issue.message}`;
  });
  throw invalid(`invalid ${what}: ${problems.join("; ")}`);
}

/** A stored item that does not parse was written by a broken or incompatible writer: say which. */
export function parseStored<T>(schema: z.ZodType<T>, item: Record<string, unknown>, what: string): T {
  const result = schema.safeParse(item);
  if (!result.success) {
    throw new Error(
      `stored ${what} record ${String(item["sk"])} is malformed: ${z.prettifyError(result.error)}`,
    );
  }
  return result.data;
}
