import type {
  DescribeExecutionInput,
  DescribeExecutionOutput,
  GetExecutionHistoryInput,
  GetExecutionHistoryOutput,
  ListExecutionsInput,
  ListExecutionsOutput,
  ListStateMachinesInput,
  ListStateMachinesOutput,
  StartExecutionInput,
  StartExecutionOutput,
  StopExecutionInput,
  StopExecutionOutput,
} from "@aws-sdk/client-sfn";

/**
 * The Step Functions calls the local cloud answers, in the SDK's own input and output shapes: the
 * runner (infra/local/step-functions) implements them, the HTTP endpoint (infra/local/aws) serves
 * them on the AWS JSON 1.0 protocol. Refusals are AwsServiceError with Step Functions' codes
 * (ExecutionAlreadyExists, ExecutionDoesNotExist, StateMachineDoesNotExist, InvalidArn, InvalidName).
 */
export interface StepFunctionsApi {
  startExecution(input: StartExecutionInput): Promise<StartExecutionOutput>;
  describeExecution(input: DescribeExecutionInput): Promise<DescribeExecutionOutput>;
  listExecutions(input: ListExecutionsInput): Promise<ListExecutionsOutput>;
  listStateMachines(input: ListStateMachinesInput): Promise<ListStateMachinesOutput>;
  getExecutionHistory(input: GetExecutionHistoryInput): Promise<GetExecutionHistoryOutput>;
  stopExecution(input: StopExecutionInput): Promise<StopExecutionOutput>;
}
