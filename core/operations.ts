import { randomUUID } from "node:crypto";
import { z } from "zod";
import { conflict, StrataError } from "./errors.js";
import { whyDown } from "./liveness.js";
import { ResourceName } from "./model.js";
import type { ClusterView } from "./placement.js";
import { RecordNotFoundError } from "./state/errors.js";
import { isFinished } from "./state/operations.js";
import {
  type NodeRecord,
  OperationFields,
  OperationKind,
  OperationParams,
  type OperationRecord,
  RequestToken,
} from "./state/records.js";
import type { StateStore } from "./state/store.js";

/**
 * Operations as the control API, the CLI and the workflows see them: the record, plus whether it is
 * stalled, a verdict that depends on the clock and on its node's heartbeat rather than on the record.
 */

export const Operation = OperationFields.extend({
  /** Why it is stalled (its node is down), or null when it is not. */
  stalled: z.string().nullable(),
});
export type Operation = z.infer<typeof Operation>;

export const StartOperationRequest = z
  .strictObject({
    kind: OperationKind,
    volume: ResourceName,
    requestToken: RequestToken,
    params: z.record(z.string(), z.unknown()).default({}),
    /** The node that runs it; by default the node whose API is asked. */
    node: z.string().min(1).optional(),
  })
  .superRefine((request, context) => {
    const params = OperationParams[request.kind].safeParse(request.params);
    for (const issue of params.error?.issues ?? []) {
      context.addIssue({ ...issue, path: ["params", ...issue.path] });
    }
  });
export type StartOperation = z.output<typeof StartOperationRequest>;

/** The operations of the control API; implementations throw StrataError for every refused request. */
export interface OperationService {
  /** Every operation kept, or those of one volume, oldest first. */
  listOperations(filter?: { volume?: string }): Promise<Operation[]>;
  getOperation(id: string): Promise<Operation>;
  /** Idempotent on the request token: the same request twice returns the one operation. */
  startOperation(request: StartOperation): Promise<Operation>;
  /** A pending operation is cancelled at once; a running one when its runner next looks. */
  cancelOperation(id: string): Promise<Operation>;
}

/** What the stalled verdict needs to know about time: the heartbeat timeout and the clock. */
export type Liveness = Pick<ClusterView, "heartbeatTimeoutMs" | "now">;

/**
 * Why an unfinished operation is stalled ("node-2: no heartbeat for 12s"), or undefined when it is
 * not: its node, which alone can run it, counts as down or is not registered at all.
 */
export function whyStalled(
  operation: Pick<OperationRecord, "state" | "node">,
  node: Pick<NodeRecord, "state" | "lastHeartbeat"> | undefined,
  liveness: Liveness,
): string | undefined {
  if (isFinished(operation)) return undefined;
  const down = node === undefined ? "not registered" : whyDown(node, liveness);
  return down === undefined ? undefined : `${operation.node}: ${down}`;
}

/**
 * Fails an operation if it is stalled, so its caller can start another (with a new request token).
 * The write is conditional on the operation as read: if its node came back and moved it on, this
 * is refused rather than clobbering it.
 */
export async function failIfStalled(
  store: StateStore,
  operationId: string,
  liveness: Liveness,
): Promise<OperationRecord> {
  const operation = await store.operations.get(operationId);
  const nodes = await store.nodes.list();
  const stalled = whyStalled(operation, findNode(nodes, operation.node), liveness);
  if (stalled === undefined) {
    throw conflict(`operation ${operationId} is not stalled: it is ${operation.state} on ${operation.node}`);
  }
  return store.operations.fail(operation, `stalled: ${stalled}`);
}

/** The OperationService over the state store: the API path writes what a workflow would write. */
export class StoreOperationService implements OperationService {
  constructor(
    private readonly store: StateStore,
    private readonly options: {
      /** Where operations run when a start names no node: the agent serving the API. */
      node: string;
      heartbeatTimeoutMs: number;
      clock?: () => Date;
    },
  ) {}

  async listOperations(filter: { volume?: string } = {}): Promise<Operation[]> {
    const operations =
      filter.volume === undefined
        ? await this.store.operations.list()
        : await this.store.operations.listByVolume((await this.store.volumes.getByName(filter.volume)).id);
    return this.withVerdicts(operations);
  }

  async getOperation(id: string): Promise<Operation> {
    const [operation] = await this.withVerdicts([await this.store.operations.get(id)]);
    return operation!;
  }

  async startOperation(request: StartOperation): Promise<Operation> {
    const volume =
      request.kind === "restore"
        ? await this.newVolume(request.volume, request.requestToken)
        : await this.store.volumes.getByName(request.volume);
    const node = request.node ?? this.options.node;
    // Refused here rather than left pending forever for a node that does not exist.
    await this.store.nodes.get(node);
    const operation = await this.store.operations.start({
      requestToken: request.requestToken,
      kind: request.kind,
      volumeId: volume.id,
      volumeName: volume.name,
      node,
      params: request.params,
    });
    const [started] = await this.withVerdicts([operation]);
    return started!;
  }

  /**
   * A restore's volume is the one it makes: its name must be free now (checked again when it is
   * made), and its id is chosen here, so the operation lists under the volume it becomes. A start
   * repeated with its request token (a workflow's task retried after its reply was lost) gets the
   * id the first start chose, and the volume that restore made already is its own, not a conflict.
   */
  private async newVolume(name: string, requestToken: string): Promise<{ id: string; name: string }> {
    const [earlier, existing] = await Promise.all([
      this.store.operations.tokenOf(requestToken),
      this.store.volumes.getByName(name).catch((error: unknown) => {
        if (error instanceof RecordNotFoundError) return undefined;
        throw error;
      }),
    ]);
    if (existing !== undefined && existing.id !== earlier?.volumeId) {
      throw new StrataError("ALREADY_EXISTS", `volume "${name}" already exists: restore into a new name`);
    }
    return { id: earlier?.volumeId ?? randomUUID(), name };
  }

  async cancelOperation(id: string): Promise<Operation> {
    const [cancelled] = await this.withVerdicts([await this.store.operations.requestCancel(id)]);
    return cancelled!;
  }

  private async withVerdicts(operations: readonly OperationRecord[]): Promise<Operation[]> {
    const nodes = await this.store.nodes.list();
    const liveness = {
      heartbeatTimeoutMs: this.options.heartbeatTimeoutMs,
      now: this.options.clock?.() ?? new Date(),
    };
    return operations.map((operation) => ({
      ...operation,
      stalled: whyStalled(operation, findNode(nodes, operation.node), liveness) ?? null,
    }));
  }
}

const findNode = (nodes: readonly NodeRecord[], id: string) => nodes.find((node) => node.id === id);
