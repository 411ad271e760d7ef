import { randomUUID } from "node:crypto";
import { DeleteCommand, PutCommand, UpdateCommand } from "@aws-sdk/lib-dynamodb";
import type { z } from "zod";
import { conflict } from "../errors.js";
import { RecordNotFoundError } from "./errors.js";
import {
  type ItemKey,
  OPERATIONS_PARTITION,
  operationKey,
  operationQueuePartition,
  operationTokenKey,
  queuedOperationKey,
} from "./keys.js";
import { ABANDONED_RESERVATION_MS } from "./names.js";
import {
  FINISHED_OPERATION_STATES,
  type OperationKind,
  OperationParams,
  type OperationProgress,
  OperationRecord,
  type OperationState,
  OperationTokenRecord,
  QueuedOperation,
} from "./records.js";
import { isConditionFailure, parseStored, type StateTable, validateInput } from "./table-client.js";

export interface NewOperation {
  requestToken: string;
  kind: OperationKind;
  volumeId: string;
  volumeName: string;
  /** The node that runs it. */
  node: string;
  params?: Record<string, unknown>;
}

/** How an operation ended, as its runner records it. */
/** What a succeeded operation made, recorded for whoever started it (the cloudsnap's id and figures). */
export type OperationResult = Record<string, unknown>;

export type OperationOutcome =
  | { state: "succeeded"; progress?: OperationProgress; warnings?: string[]; result?: OperationResult }
  | { state: "cancelled"; progress?: OperationProgress }
  | { state: "failed"; error: string; progress?: OperationProgress };

/**
 * How long finished operations and request tokens are kept before DynamoDB's TTL may delete them
 * (the table's TTL attribute is `expiresAt`; dynalite keeps them). A week covers any retry of a
 * start and any workflow that polls the result.
 */
export const OPERATION_RETENTION_SECONDS = 7 * 24 * 3600;

/** The state (one or several) and, where it matters, the runner an operation must still have. */
interface Expected {
  state: OperationState | readonly OperationState[];
  runnerId?: string;
  node?: string;
}

/**
 * Operations. Every change of state is one conditional write on the state read (and on the runner
 * that claimed it, once running), so of two writers exactly one moves it on. An unfinished
 * operation also has an item in its node's queue, which is what the node polls; the item is written
 * before the record (a record is never unqueued) and removed once the operation has ended.
 */
export class OperationStore {
  constructor(private readonly table: StateTable) {}

  /**
   * Starts an operation, idempotently: the first start with a request token takes the token, the
   * same start again (a retried Lambda, a CLI run twice) returns the operation it started, and a
   * start with the token and another kind, volume or node is refused. A start cut short after
   * taking the token is completed by its retry.
   */
  async start(request: NewOperation): Promise<OperationRecord> {
    const paramsSchema: z.ZodType<Record<string, unknown>> = OperationParams[request.kind];
    const params = validateInput(paramsSchema, request.params ?? {}, `${request.kind} params`);
    const now = this.table.now();
    const fresh = validateInput(
      OperationRecord,
      {
        id: randomUUID(),
        kind: request.kind,
        volumeId: request.volumeId,
        volumeName: request.volumeName,
        node: request.node,
        state: "pending",
        params,
        progress: null,
        error: null,
        cancelRequested: false,
        requestToken: request.requestToken,
        runnerId: null,
        createdAt: now,
        startedAt: null,
        endedAt: null,
      },
      "operation",
    );
    const token = await this.takeToken(fresh);
    let operation = fresh;
    if (token.operationId !== fresh.id) {
      const started = await this.find(token.operationId);
      if (started !== undefined) return started;
      // The first start took the token and stopped there: finish it under the operation id it chose.
      operation = { ...fresh, id: token.operationId, createdAt: token.createdAt };
    }
    const queued: QueuedOperation = { operationId: operation.id, createdAt: now };
    await this.put(queuedOperationKey(operation.node, operation.id), queued);
    if (await this.put(operationKey(operation.id), operation, "attribute_not_exists(pk)")) return operation;
    return this.get(operation.id);
  }

  async get(operationId: string): Promise<OperationRecord> {
    const operation = await this.find(operationId);
    if (operation === undefined) throw new RecordNotFoundError(`operation ${operationId}`);
    return operation;
  }

  /**
   * Every operation kept, oldest first. Lists by volume and by node filter this one query: those are
   * read by people and workflows now and then, while the hot read (each node's poll) has its queue.
   */
  async list(): Promise<OperationRecord[]> {
    const operations = await this.table.queryPartition(OPERATIONS_PARTITION, OperationRecord, "operation");
    return operations.sort((a, b) => a.createdAt.localeCompare(b.createdAt));
  }

  async listByVolume(volumeId: string): Promise<OperationRecord[]> {
    return (await this.list()).filter((operation) => operation.volumeId === volumeId);
  }

  async listByNode(node: string): Promise<OperationRecord[]> {
    return (await this.list()).filter((operation) => operation.node === node);
  }

  /**
   * The node's unfinished operations, read through its queue: the one read each node makes every
   * second stays as small as its pending and running work. Queue items left behind are removed
   * here: those of operations that have ended (the dequeue after the end was cut short), and those
   * of starts that stopped before writing the record (a retry of the start queues it again).
   */
  async unfinished(node: string): Promise<OperationRecord[]> {
    const queued = await this.table.queryPartition(operationQueuePartition(node), QueuedOperation, "queue");
    const operations: OperationRecord[] = [];
    for (const item of queued) {
      const operation = await this.find(item.operationId);
      if (operation === undefined) {
        if (this.table.nowMs() - Date.parse(item.createdAt) > ABANDONED_RESERVATION_MS) {
          await this.dequeue({ node, id: item.operationId });
        }
      } else if (isFinished(operation)) {
        await this.dequeue(operation);
      } else {
        operations.push(operation);
      }
    }
    return operations;
  }

  /** pending → running for `runnerId` on `node`; undefined when another runner claimed it first. */
  claim(operationId: string, node: string, runnerId: string): Promise<OperationRecord | undefined> {
    return this.update(
      operationId,
      { state: "running", runnerId, startedAt: this.table.now() },
      { state: "pending", node },
    );
  }

  /**
   * Records progress while `runnerId` still runs it. Undefined when it no longer does (the operation
   * was failed for it): the runner stops the work. The answer carries `cancelRequested`.
   */
  reportProgress(
    operationId: string,
    runnerId: string,
    progress: OperationProgress,
  ): Promise<OperationRecord | undefined> {
    return this.update(operationId, { progress }, { state: "running", runnerId });
  }

  /** running → succeeded | failed | cancelled, by the runner that claimed it. */
  async finish(
    operationId: string,
    runnerId: string,
    outcome: OperationOutcome,
  ): Promise<OperationRecord | undefined> {
    const end = {
      ...this.ending(outcome.state),
      ...(outcome.progress ? { progress: outcome.progress } : {}),
      ...(outcome.state === "succeeded" && outcome.warnings?.length ? { warnings: outcome.warnings } : {}),
      ...(outcome.state === "succeeded" && outcome.result !== undefined ? { result: outcome.result } : {}),
    };
    const error = outcome.state === "failed" ? outcome.error : null;
    const ended = await this.update(operationId, { ...end, error }, { state: "running", runnerId });
    if (ended !== undefined) await this.dequeue(ended);
    return ended;
  }

  /**
   * Fails an operation that is still as the caller read it (same state, same runner): a stalled one
   * whose node stopped heartbeating, or one its restarted agent had running. The caller may then
   * start another with a new request token.
   */
  async fail(operation: OperationRecord, error: string): Promise<OperationRecord> {
    if (isFinished(operation)) throw conflict(`operation ${operation.id} has ${operation.state} already`);
    const expected: Expected =
      operation.runnerId === null
        ? { state: operation.state }
        : { state: operation.state, runnerId: operation.runnerId };
    const failed = await this.update(operation.id, { ...this.ending("failed"), error }, expected);
    if (failed === undefined) {
      const now = await this.get(operation.id);
      throw conflict(`operation ${operation.id} changed while it was being failed: it is ${now.state} now`);
    }
    await this.dequeue(failed);
    return failed;
  }

  /**
   * Cancels a pending operation at once; asks the runner of a running one to stop (it records the
   * cancellation when the work has stopped). Refused once the operation has ended.
   */
  async requestCancel(operationId: string): Promise<OperationRecord> {
    const cancelled = await this.update(
      operationId,
      { ...this.ending("cancelled"), cancelRequested: true },
      { state: "pending" },
    );
    if (cancelled !== undefined) {
      await this.dequeue(cancelled);
      return cancelled;
    }
    const asked = await this.update(operationId, { cancelRequested: true }, { state: "running" });
    if (asked !== undefined) return asked;
    const operation = await this.get(operationId);
    throw conflict(`operation ${operationId} cannot be cancelled: it has ${operation.state} already`);
  }

  /** What the start that took `requestToken` recorded, while the token lives. */
  tokenOf(requestToken: string): Promise<OperationTokenRecord | undefined> {
    return this.table.get(operationTokenKey(requestToken), OperationTokenRecord, "operation token");
  }

  private find(operationId: string): Promise<OperationRecord | undefined> {
    return this.table.get(operationKey(operationId), OperationRecord, "operation");
  }

  /** The token for `operation`, or the one an earlier start took; refused if that start was another. */
  private async takeToken(operation: OperationRecord): Promise<OperationTokenRecord> {
    const token: OperationTokenRecord = {
      requestToken: operation.requestToken,
      operationId: operation.id,
      kind: operation.kind,
      volumeId: operation.volumeId,
      node: operation.node,
      createdAt: operation.createdAt,
      expiresAt: this.expiry(),
    };
    const key = operationTokenKey(token.requestToken);
    if (await this.put(key, token, "attribute_not_exists(pk)")) return token;
    const taken = await this.tokenOf(token.requestToken);
    // Expired and deleted by TTL between the two requests: take it again.
    if (taken === undefined) return this.takeToken(operation);
    const same = taken.kind === token.kind && taken.volumeId === token.volumeId && taken.node === token.node;
    if (!same) {
      throw conflict(
        `request token "${token.requestToken}" already started operation ${taken.operationId} ` +
          `(${taken.kind} of volume ${taken.volumeId} on ${taken.node}); use a new token for another operation`,
      );
    }
    return taken;
  }

  /** A put, conditional when `condition` is given; false when the condition refused it. */
  private async put(key: ItemKey, item: object, condition?: string): Promise<boolean> {
    try {
      await this.table.doc.send(
        new PutCommand({
          TableName: this.table.tableName,
          Item: { ...key, ...item },
          ConditionExpression: condition,
        }),
      );
      return true;
    } catch (error) {
      if (condition !== undefined && isConditionFailure(error)) return false;
      throw error;
    }
  }

  /** Sets `fields` if the operation is as `expected`; undefined when it is not (or does not exist). */
  private async update(
    operationId: string,
    fields: Partial<OperationRecord>,
    expected: Expected,
  ): Promise<OperationRecord | undefined> {
    const names: Record<string, string> = { "#state": "state" };
    const values: Record<string, unknown> = {};
    const assignments = Object.entries(fields).map(([field, value]) => {
      names[`#${field}`] = field;
      values[`:${field}`] = value;
      return `#${field} = :${field}`;
    });
    const states = typeof expected.state === "string" ? [expected.state] : expected.state;
    states.forEach((state, index) => {
      values[`:expected${index}`] = state;
    });
    const conditions = [`#state IN (${states.map((_, index) => `:expected${index}`).join(", ")})`];
    for (const field of ["runnerId", "node"] as const) {
      if (expected[field] === undefined) continue;
      names[`#${field}`] = field;
      values[`:expected_${field}`] = expected[field];
      conditions.push(`#${field} = :expected_${field}`);
    }
    try {
      const { Attributes } = await this.table.doc.send(
        new UpdateCommand({
          TableName: this.table.tableName,
          Key: operationKey(operationId),
          UpdateExpression: `SET ${assignments.join(", ")}`,
          ConditionExpression: conditions.join(" AND "),
          ExpressionAttributeNames: names,
          ExpressionAttributeValues: values,
          ReturnValues: "ALL_NEW",
        }),
      );
      return parseStored(OperationRecord, Attributes ?? {}, "operation");
    } catch (error) {
      if (isConditionFailure(error)) return undefined;
      throw error;
    }
  }

  private ending(state: OperationState) {
    return { state, endedAt: this.table.now(), expiresAt: this.expiry() };
  }

  private expiry(): number {
    return Math.floor(this.table.nowMs() / 1000) + OPERATION_RETENTION_SECONDS;
  }

  private async dequeue(operation: Pick<OperationRecord, "node" | "id">): Promise<void> {
    await this.table.doc.send(
      new DeleteCommand({
        TableName: this.table.tableName,
        Key: queuedOperationKey(operation.node, operation.id),
      }),
    );
  }
}

export const isFinished = (operation: Pick<OperationRecord, "state">): boolean =>
  FINISHED_OPERATION_STATES.includes(operation.state);
