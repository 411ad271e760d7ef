import {
  CreateTableCommand,
  type CreateTableCommandInput,
  type DynamoDBClient,
  ResourceInUseException,
  waitUntilTableExists,
} from "@aws-sdk/client-dynamodb";

/**
 * The table's shape, shared by local mode, the tests and (later) the CDK app, so all three create the
 * same table. On-demand billing: the control plane's load is bursty (node loss, AZ failure) and small.
 */
export const stateTableDefinition = (tableName: string): CreateTableCommandInput => ({
  TableName: tableName,
  AttributeDefinitions: [
    { AttributeName: "pk", AttributeType: "S" },
    { AttributeName: "sk", AttributeType: "S" },
  ],
  KeySchema: [
    { AttributeName: "pk", KeyType: "HASH" },
    { AttributeName: "sk", KeyType: "RANGE" },
  ],
  BillingMode: "PAY_PER_REQUEST",
});

/** How long to wait for a new table to become ACTIVE (seconds; DynamoDB takes a few, dynalite none). */
const TABLE_ACTIVE_TIMEOUT_SECONDS = 120;

/**
 * Creates the state table unless it exists, and returns once it is ACTIVE. Idempotent, so every start
 * of a local cluster and every test suite can call it. In AWS the table is the CDK app's.
 */
export async function ensureStateTable(client: DynamoDBClient, tableName: string): Promise<void> {
  try {
    await client.send(new CreateTableCommand(stateTableDefinition(tableName)));
  } catch (error) {
    // Another process (or an earlier run) created it; it may still be CREATING, so wait below.
    if (!(error instanceof ResourceInUseException)) throw error;
  }
  await waitUntilTableExists(
    { client, maxWaitTime: TABLE_ACTIVE_TIMEOUT_SECONDS, minDelay: 1, maxDelay: 5 },
    { TableName: tableName },
  );
}
