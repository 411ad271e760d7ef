import type {
  DescribeExecutionInput,
  GetExecutionHistoryInput,
  ListExecutionsInput,
  ListStateMachinesInput,
  StartExecutionInput,
  StopExecutionInput,
} from "@aws-sdk/client-sfn";
import type { StepFunctionsApi } from "../step-functions/api.js";
import type { AwsProtocolHandler } from "./http.js";
import { jsonProtocol } from "./json-protocol.js";

/**
 * Step Functions on the wire: AWS JSON 1.0 with `X-Amz-Target: AWSStepFunctions.<Operation>`. The
 * inputs arrive in the SDK's own shapes and go to the runner as they are; the runner states its
 * refusals with Step Functions' codes, and its Dates leave as epoch seconds.
 */
export function stepFunctionsProtocol(api: StepFunctionsApi): AwsProtocolHandler {
  return jsonProtocol({
    version: "1.0",
    targetPrefix: "AWSStepFunctions",
    operations: {
      StartExecution: (input) => api.startExecution(input as unknown as StartExecutionInput),
      DescribeExecution: (input) => api.describeExecution(input as unknown as DescribeExecutionInput),
      ListExecutions: (input) => api.listExecutions(input as unknown as ListExecutionsInput),
      ListStateMachines: (input) => api.listStateMachines(input as unknown as ListStateMachinesInput),
      GetExecutionHistory: (input) => api.getExecutionHistory(input as unknown as GetExecutionHistoryInput),
      StopExecution: (input) => api.stopExecution(input as unknown as StopExecutionInput),
    },
  });
}
