import { z } from "zod";
import type { ClusterAccess } from "../shared/cluster.js";
import { PlanDrainInput, planDrain } from "./drain.js";
import type { OperationPlan } from "./planned.js";
import { PlanRepairsInput, planRepairs } from "./repairs.js";
import { PlanRespreadInput, planRespread } from "./respread.js";
import { PlanResyncsInput, planResyncs } from "./resyncs.js";

export const PlanOperationsInput = z.discriminatedUnion("purpose", [
  PlanRepairsInput,
  PlanResyncsInput,
  PlanRespreadInput,
  PlanDrainInput,
]);
export type PlanOperationsInput = z.infer<typeof PlanOperationsInput>;

/**
 * The workflows' one planning task: what to start for a repair, a resync after reattach, a
 * re-spread, a drain before a scale-in.
 */
export function planOperations(input: PlanOperationsInput, cluster: ClusterAccess): Promise<OperationPlan> {
  switch (input.purpose) {
    case "repair":
      return planRepairs(input, cluster);
    case "resync":
      return planResyncs(input, cluster);
    case "respread":
      return planRespread(input, cluster);
    case "drain":
      return planDrain(input, cluster);
  }
}
