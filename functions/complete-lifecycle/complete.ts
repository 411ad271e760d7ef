import { type AutoScalingClient, CompleteLifecycleActionCommand } from "@aws-sdk/client-auto-scaling";
import { z } from "zod";
import { TransientError } from "../shared/errors.js";

export const CompleteLifecycleInput = z.object({
  lifecycle: z.object({
    autoScalingGroupName: z.string().min(1),
    lifecycleHookName: z.string().min(1),
    lifecycleActionToken: z.string().min(1),
  }),
  instanceId: z.string().min(1),
});
export type CompleteLifecycleInput = z.infer<typeof CompleteLifecycleInput>;

/**
 * Lets Auto Scaling finish terminating the lost instance once its drives are off it. An action
 * already completed (a second run) or timed out is no longer there: that is done, not an error.
 */
export async function completeLifecycle(
  input: CompleteLifecycleInput,
  autoScaling: AutoScalingClient,
): Promise<{ completed: boolean; detail: string }> {
  const { autoScalingGroupName, lifecycleHookName, lifecycleActionToken } = input.lifecycle;
  try {
    await autoScaling.send(
      new CompleteLifecycleActionCommand({
        AutoScalingGroupName: autoScalingGroupName,
        LifecycleHookName: lifecycleHookName,
        LifecycleActionToken: lifecycleActionToken,
        InstanceId: input.instanceId,
        LifecycleActionResult: "CONTINUE",
      }),
    );
    return { completed: true, detail: `${input.instanceId} may terminate` };
  } catch (error) {
    if (error instanceof Error && error.name === "ValidationError")
      return {
        completed: false,
        detail: `no lifecycle action is pending for ${input.instanceId}: ${error.message}`,
      };
    if (error instanceof Error && error.name === "Throttling") throw new TransientError(error.message);
    throw error;
  }
}
