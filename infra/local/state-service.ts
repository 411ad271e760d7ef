import { mkdir } from "node:fs/promises";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { localAwsEnvironment, useLocalAws } from "../../core/local-aws-environment.js";
import { startLocalDynamoDb } from "../../core/state/local-dynamodb.js";
import { StateStore } from "../../core/state/store.js";

/** The local cluster's one state table (in AWS the CDK app names it). */
export const LOCAL_STATE_TABLE = "strata-state";
/** `<dir>/dynamodb`: dynalite's LevelDB, so nodes and volumes outlive a restart of the cluster. */
export const DYNAMODB_DIR = "dynamodb";
const POLL_MS = 200;

/** The local cluster's DynamoDB-compatible server, its table, and what agents need to reach it. */
export interface LocalStateService {
  endpoint: string;
  tableName: string;
  /** AWS_ENDPOINT_URL_DYNAMODB and friends, for the agents' environment. */
  environment: Record<string, string>;
  store: StateStore;
  /**
   * Resolves once `nodeId` has registered (or heartbeated) at or after `sinceMs`: proof that this very
   * agent reaches the store, not a record left by an earlier run. Throws after `timeoutMs`.
   */
  waitForRegistration(nodeId: string, sinceMs: number, timeoutMs: number): Promise<void>;
  close(): Promise<void>;
}

/** Starts dynalite on a free loopback port, persistent under <dir>/dynamodb, and creates the table. */
export async function startLocalStateService(dir: string): Promise<LocalStateService> {
  const path = join(dir, DYNAMODB_DIR);
  await mkdir(path, { recursive: true });
  const dynamoDb = await startLocalDynamoDb({ path });
  // The supervisor's own store client finds the endpoint the way the agents do: the environment.
  useLocalAws(dynamoDb.endpoint);
  const store = new StateStore({ tableName: LOCAL_STATE_TABLE });
  try {
    await store.ensureTable();
  } catch (error) {
    store.close();
    await dynamoDb.close();
    throw error;
  }
  return {
    endpoint: dynamoDb.endpoint,
    tableName: LOCAL_STATE_TABLE,
    environment: localAwsEnvironment(dynamoDb.endpoint),
    store,
    async waitForRegistration(nodeId, sinceMs, timeoutMs) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const node = (await store.nodes.list()).find((record) => record.id === nodeId);
        if (node?.state === "up" && Date.parse(node.lastHeartbeat) >= sinceMs) return;
        if (Date.now() > deadline)
          throw new Error(`${nodeId}: the agent is serving but has not registered in the state store`);
        await sleep(POLL_MS);
      }
    },
    async close() {
      store.close();
      await dynamoDb.close();
    },
  };
}
