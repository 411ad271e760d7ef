import { randomUUID } from "node:crypto";
import { StateStore } from "../../core/state/store.js";
import {
  type LocalDynamoDb,
  type LocalDynamoDbOptions,
  startLocalDynamoDb,
} from "../../infra/local/dynamodb.js";

/**
 * A real dynalite for a suite, reached the way every Strata process reaches DynamoDB: through the
 * standard AWS_ENDPOINT_URL_DYNAMODB variable and dummy credentials, nothing passed to the client.
 */
export async function startDynamoDb(options: LocalDynamoDbOptions = {}): Promise<LocalDynamoDb> {
  const dynamoDb = await startLocalDynamoDb(options);
  process.env["AWS_ENDPOINT_URL_DYNAMODB"] = dynamoDb.endpoint;
  process.env["AWS_REGION"] = "local";
  process.env["AWS_ACCESS_KEY_ID"] = "local";
  process.env["AWS_SECRET_ACCESS_KEY"] = "local";
  return dynamoDb;
}

/** A store over a fresh table, so tests in one suite never see each other's records. */
export async function freshStore(clock?: () => Date): Promise<StateStore> {
  const store = new StateStore({ tableName: `strata-${randomUUID()}`, clock });
  await store.ensureTable();
  return store;
}
