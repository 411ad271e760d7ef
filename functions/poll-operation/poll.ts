import { z } from "zod";
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
  const record =
    operation.stalled === null ? operation : await failIfStalled(cluster.store, operation.id, liveness);
  return {
    operationId: record.id,
    volume: record.volumeName,
    state: record.state,
    error: record.error,
    bytesDone: record.progress?.bytesDone ?? 0,
    bytesTotal: record.progress?.bytesTotal ?? 0,
  };
}
