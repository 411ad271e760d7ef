import { heartbeatTimeoutMs } from "../../core/liveness.js";
import { type OperationService, StoreOperationService } from "../../core/operations.js";
import type { StateStore } from "../../core/state/store.js";
import type { Logger } from "../log.js";
import { type OperationExecutors, OperationRunner } from "./runner.js";

export interface NodeOperations {
  /** What the control API serves: the same records a workflow writes to the store. */
  service: OperationService;
  /** Stops running operations (they are failed as stopped) and the queue's poll. */
  stop(): Promise<void>;
}

/** A node's part in operations: the API's service over the store, and the runner of its queue. */
export function startNodeOperations(options: {
  store: StateStore;
  node: string;
  executors: OperationExecutors;
  log: Logger;
}): NodeOperations {
  const { store, node, executors, log } = options;
  const runner = new OperationRunner({ operations: store.operations, node, executors, log });
  runner.start();
  return {
    service: new StoreOperationService(store, { node, heartbeatTimeoutMs: heartbeatTimeoutMs() }),
    stop: () => runner.stop(),
  };
}
