import { StrataError } from "../../core/errors.js";
import { StartOperationRequest, StoreOperationService } from "../../core/operations.js";
import type { ClusterAccess } from "../shared/cluster.js";
import { RefusedError } from "../shared/errors.js";

export const StartOperationInput = StartOperationRequest;

export interface StartedOperation {
  operationId: string;
  state: string;
}

/**
 * Writes the operation record the named node picks up (DESIGN.md, Operations): the workflow never
 * reaches a node, and a task that runs twice finds the operation its first run started (request
 * token). The data moves on the node; the workflow polls.
 */
export async function startOperation(
  request: ReturnType<typeof StartOperationInput.parse>,
  cluster: ClusterAccess,
): Promise<StartedOperation> {
  const liveness = cluster.liveness();
  const service = new StoreOperationService(cluster.store, {
    node: request.node ?? "",
    heartbeatTimeoutMs: liveness.heartbeatTimeoutMs,
    clock: () => liveness.now,
  });
  try {
    const operation = await service.startOperation(request);
    return { operationId: operation.id, state: operation.state };
  } catch (error) {
    if (isRefusal(error)) throw new RefusedError(error.message);
    throw error;
  }
}

/**
 * A start the cluster refused as asked (a restore into a name in use, a volume the store does not
 * have: RecordNotFoundError is a NOT_FOUND): retrying cannot change it.
 */
function isRefusal(error: unknown): error is StrataError {
  return (
    error instanceof StrataError &&
    (error.code === "ALREADY_EXISTS" || error.code === "INVALID_ARGUMENT" || error.code === "NOT_FOUND")
  );
}
