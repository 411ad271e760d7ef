import type { RecoveryHow } from "../../core/events.js";
import type { StartOperation } from "../../core/operations.js";

/**
 * What every planning task of the workflows answers: the operations to start (each as
 * start-operation takes it, with its node and a request token derived from the execution), the
 * volumes left out with why, and how the plan restores redundancy (for the events it ends with).
 * Plans read the state table only; placement of new replicas is the running operation's own, on
 * fresh figures, so a plan never goes stale.
 */
export interface OperationPlan {
  operations: (StartOperation & { node: string })[];
  unplanned: { volume: string; reason: string }[];
  how: RecoveryHow;
}
