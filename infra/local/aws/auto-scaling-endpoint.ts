import type { AwsProtocolHandler } from "./http.js";
import type { LocalEc2 } from "./local-ec2.js";
import { awsQueryDialect, queryProtocol } from "./query-protocol.js";
import { AwsServiceError } from "./service-error.js";

export const AUTO_SCALING_NAMESPACE = "http://autoscaling.amazonaws.com/doc/2011-01-01/";

/**
 * Auto Scaling on the wire (the AWS query protocol, API version 2011-01-01): the one call the
 * node-loss workflow makes, CompleteLifecycleAction, which lets an instance held by a terminate
 * hook finish terminating once its drive set is safe.
 */
export function autoScalingProtocol(world: LocalEc2): AwsProtocolHandler {
  return queryProtocol(awsQueryDialect(AUTO_SCALING_NAMESPACE), {
    CompleteLifecycleAction: (params) => {
      const result = params.required("LifecycleActionResult");
      if (result !== "CONTINUE" && result !== "ABANDON")
        throw new AwsServiceError(
          "ValidationError",
          `Invalid LifecycleActionResult '${result}': it must be CONTINUE or ABANDON`,
        );
      const token = params.string("LifecycleActionToken");
      const instanceId = params.string("InstanceId");
      if (token === undefined && instanceId === undefined)
        throw new AwsServiceError(
          "ValidationError",
          "Either a LifecycleActionToken or an InstanceId must be given",
        );
      world.completeLifecycleAction({
        autoScalingGroupName: params.required("AutoScalingGroupName"),
        hookName: params.required("LifecycleHookName"),
        ...(token !== undefined ? { token } : { instanceId }),
        result,
      });
      return {};
    },
  });
}
