import { DynamoDBPersistenceLayer } from "@aws-lambda-powertools/idempotency/dynamodb";
import { functionSettings } from "./settings.js";

/**
 * Powertools idempotency records live in the one state table, in a partition per function (the
 * table's pk/sk key; TTL on the table's own expiry attribute), so there is no second table to
 * deploy, secure and back up.
 */
export function idempotencyRecords(functionName: string): DynamoDBPersistenceLayer {
  return new DynamoDBPersistenceLayer({
    tableName: functionSettings().STRATA_STATE_TABLE,
    keyAttr: "pk",
    sortKeyAttr: "sk",
    staticPkValue: `IDEMPOTENCY#${functionName}`,
    expiryAttr: "expiresAt",
  });
}
