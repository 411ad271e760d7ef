import { DynamoDBClient } from "@aws-sdk/client-dynamodb";
import { DynamoDBDocumentClient } from "@aws-sdk/lib-dynamodb";
import { HealthStore } from "./health.js";
import { LeaseStore } from "./leases.js";
import { NodeStore } from "./nodes.js";
import { OperationStore } from "./operations.js";
import { PolicyStore } from "./policies.js";
import { SnapshotStore } from "./snapshots.js";
import { ensureStateTable } from "./table.js";
import { StateTable } from "./table-client.js";
import { VolumeStore } from "./volumes.js";
import { ZoneStore } from "./zones.js";

export interface StateStoreOptions {
  tableName: string;
  /**
   * Defaults to a client configured only from the environment: endpoint from AWS_ENDPOINT_URL_DYNAMODB
   * or AWS_ENDPOINT_URL, region and credentials from the usual chain. Nothing is set here, so the same
   * code reaches DynamoDB, LocalStack or local mode's dynalite.
   */
  client?: DynamoDBClient;
  /** Timestamps (heartbeats, creation) and the age of name reservations; tests move it. */
  clock?: () => Date;
  /**
   * When set (and no client is given), a request that takes longer fails instead of waiting for TCP
   * to give up on a network that silently drops it. Callers on a retry loop want this.
   */
  requestTimeoutMs?: number;
}

/**
 * The cluster-state store: typed records over one DynamoDB table, written only with single-item
 * conditional writes (no transactions, so it also runs on dynalite). Retrying throttled requests is
 * left to the SDK's retry strategy.
 */
export class StateStore {
  readonly nodes: NodeStore;
  readonly volumes: VolumeStore;
  readonly snapshots: SnapshotStore;
  readonly operations: OperationStore;
  readonly zones: ZoneStore;
  readonly health: HealthStore;
  readonly leases: LeaseStore;
  readonly policies: PolicyStore;
  readonly tableName: string;
  private readonly client: DynamoDBClient;
  private readonly ownsClient: boolean;

  constructor(options: StateStoreOptions) {
    this.tableName = options.tableName;
    this.ownsClient = options.client === undefined;
    this.client = options.client ?? new DynamoDBClient(boundedRequests(options.requestTimeoutMs));
    const doc = DynamoDBDocumentClient.from(this.client, {
      // Optional fields (a node's instanceId) are left out of the item rather than failing the write.
      marshallOptions: { removeUndefinedValues: true },
    });
    const table = new StateTable(doc, this.tableName, options.clock ?? (() => new Date()));
    this.nodes = new NodeStore(table);
    this.volumes = new VolumeStore(table);
    this.snapshots = new SnapshotStore(table);
    this.operations = new OperationStore(table);
    this.zones = new ZoneStore(table);
    this.health = new HealthStore(table);
    this.leases = new LeaseStore(table);
    this.policies = new PolicyStore(table);
  }

  /** Creates the table if it is missing (local mode, tests); in AWS the CDK app owns it. */
  ensureTable(): Promise<void> {
    return ensureStateTable(this.client, this.tableName);
  }

  /** Closes the HTTP connections of a client this store created; a client passed in is the caller's. */
  close(): void {
    if (this.ownsClient) this.client.destroy();
  }
}

/** The SDK only warns when a request outlives `requestTimeout` unless told to throw. */
function boundedRequests(timeoutMs: number | undefined) {
  return timeoutMs === undefined
    ? {}
    : {
        requestHandler: {
          requestTimeout: timeoutMs,
          connectionTimeout: timeoutMs,
          throwOnRequestTimeout: true,
        },
      };
}
