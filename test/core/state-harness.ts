import { randomUUID } from "node:crypto";
import { afterAll, afterEach, beforeAll, beforeEach } from "vitest";
import { useLocalAws } from "../../core/local-aws-environment.js";
import {
  type LocalDynamoDb,
  type LocalDynamoDbOptions,
  startLocalDynamoDb,
} from "../../core/state/local-dynamodb.js";
import { StateStore } from "../../core/state/store.js";

/**
 * A real dynalite for a suite, reached the way every Strata process reaches DynamoDB: through the
 * standard AWS_ENDPOINT_URL_DYNAMODB variable and dummy credentials, nothing passed to the client.
 */
export async function startDynamoDb(options: LocalDynamoDbOptions = {}): Promise<LocalDynamoDb> {
  const dynamoDb = await startLocalDynamoDb(options);
  useLocalAws(dynamoDb.endpoint);
  return dynamoDb;
}

/** A store over a fresh table, so tests in one suite never see each other's records. */
export async function freshStore(clock?: () => Date): Promise<StateStore> {
  const store = new StateStore({ tableName: `strata-${randomUUID()}`, clock });
  await store.ensureTable();
  return store;
}

/**
 * A real dynalite for the suite and a fresh table for every test: the setup every state-store suite
 * needs, registered once. `use` receives each test's store before the test runs.
 */
export function freshStorePerTest(use: (store: StateStore) => void, clock?: () => Date): void {
  let dynamoDb: LocalDynamoDb | undefined;
  let store: StateStore | undefined;
  beforeAll(async () => {
    dynamoDb = await startDynamoDb();
  });
  afterAll(async () => {
    await dynamoDb?.close();
  });
  beforeEach(async () => {
    store = await freshStore(clock);
    use(store);
  });
  afterEach(() => {
    store?.close();
  });
}

/**
 * A real dynalite and one fresh table for the whole suite, registered once; `suite.store` is the
 * store once the suite runs.
 */
export function storePerSuite(): { readonly store: StateStore } {
  let dynamoDb: LocalDynamoDb | undefined;
  let store: StateStore | undefined;
  beforeAll(async () => {
    dynamoDb = await startDynamoDb();
    store = await freshStore();
  });
  afterAll(async () => {
    store?.close();
    await dynamoDb?.close();
  });
  return {
    get store(): StateStore {
      if (store === undefined) throw new Error("the suite's store is used before the suite runs");
      return store;
    },
  };
}
