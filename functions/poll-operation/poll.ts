import { z } from "zod";
import { StrataError } from "../../core/errors.js";
import type { LivenessClock } from "../../core/liveness.js";
import { failIfStalled, StoreOperationService } from "../../core/operations.js";
import type { ClusterAccess } from "../shared/cluster.js";

export const PollOperationInput = z.object({ operationId: z.string().min(1) });
export type PollOperationInput = z.infer<typeof PollOperationInput>;

export interface OperationStatus {
  operationId: string;
  volume: string;
  /** pending | running: poll again; succeeded | failed | cancelled: done. */
  state: string;
  error: string | null;
  bytesDone: number;
  bytesTotal: number;
  /** What a succeeded operation made (the cloudsnap it uploaded, the volume it restored); {} until then. */
  result: Record<string, unknown>;
}

/**
 * One look at an operation, for a workflow's Wait loop. A stalled one (its node stopped
 * heartbeating) is failed here, so the loop ends and the workflow can plan again rather than wait
 * for a node that may never come back.
 */
export async function pollOperation(
  input: PollOperationInput,
  cluster: ClusterAccess,
): Promise<OperationStatus> {
  const liveness = cluster.liveness();
  const service = new StoreOperationService(cluster.store, {
    node: "",
    heartbeatTimeoutMs: liveness.heartbeatTimeoutMs,
    // The stalled verdict and the failing write must judge by one clock: the cluster's.
    clock: () => liveness.now,
  });
  const operation = await service.getOperation(input.operationId);
  const record = operation.stalled === null ? operation : await failStalled(cluster, operation.id, liveness);
  return {
    operationId: record.id,
    volume: record.volumeName,
    state: record.state,
    error: record.error,
    bytesDone: record.progress?.bytesDone ?? 0,
    bytesTotal: record.progress?.bytesTotal ?? 0,
    result: record.result ?? {},
  };
}

/**
 * Fails a stalled operation. Its node may come back, or its runner move it on, between the look
 * and the conditional write: then the write is refused, and the operation is answered as it is now.
 */
async function failStalled(cluster: ClusterAccess, operationId: string, liveness: LivenessClock) {
  try {
    return await failIfStalled(cluster.store, operationId, liveness);
  } catch (error) {
    if (error instanceof StrataError && error.code === "FAILED_PRECONDITION")
      return cluster.store.operations.get(operationId);
    throw error;
  }
}
