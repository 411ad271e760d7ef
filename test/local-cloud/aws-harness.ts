import { randomUUID } from "node:crypto";
import type { PutEventsResultEntry } from "@aws-sdk/client-eventbridge";
import type {
  DescribeExecutionInput,
  DescribeExecutionOutput,
  GetExecutionHistoryInput,
  GetExecutionHistoryOutput,
  HistoryEvent,
  ListExecutionsInput,
  ListExecutionsOutput,
  ListStateMachinesInput,
  ListStateMachinesOutput,
  StartExecutionInput,
  StartExecutionOutput,
  StopExecutionInput,
  StopExecutionOutput,
} from "@aws-sdk/client-sfn";
import type { AwsEvent } from "../../infra/local/aws/aws-event.js";
import { type LocalAwsEndpoints, startLocalAwsEndpoints } from "../../infra/local/aws/endpoints.js";
import type { EventBusApi, EventBusEntry } from "../../infra/local/aws/eventbridge-endpoint.js";
import { LOCAL_ACCOUNT_ID } from "../../infra/local/aws/identity.js";
import { type DriveChange, LocalEc2, type LocalEc2Options } from "../../infra/local/aws/local-ec2.js";
import { AwsServiceError } from "../../infra/local/aws/service-error.js";
import type { StepFunctionsApi } from "../../infra/local/step-functions/api.js";

/** What the SDK clients need besides the endpoint variables; no endpoint is ever passed to a client. */
export const CLIENT_CONFIG = {
  region: "local",
  credentials: { accessKeyId: "local", secretAccessKey: "local" },
  maxAttempts: 1,
};

export const ZONES = ["local-a", "local-b", "local-c"];

/** A Step Functions runner in miniature: executions held in memory, refusing as Step Functions does. */
export class FakeStepFunctions implements StepFunctionsApi {
  readonly executions = new Map<string, DescribeExecutionOutput & { history: HistoryEvent[] }>();

  async startExecution(input: StartExecutionInput): Promise<StartExecutionOutput> {
    if (!input.stateMachineArn?.startsWith("arn:aws:states:"))
      throw new AwsServiceError("InvalidArn", `Invalid Arn: '${input.stateMachineArn}'`);
    const name = input.name ?? randomUUID();
    const executionArn = `${input.stateMachineArn.replace(":stateMachine:", ":execution:")}:${name}`;
    if (this.executions.has(executionArn))
      throw new AwsServiceError("ExecutionAlreadyExists", `Execution Already Exists: '${executionArn}'`);
    const startDate = new Date(Math.floor(Date.now() / 1000) * 1000 + 500);
    this.executions.set(executionArn, {
      executionArn,
      stateMachineArn: input.stateMachineArn,
      name,
      status: "RUNNING",
      startDate,
      input: input.input ?? "{}",
      history: [{ id: 1, type: "ExecutionStarted", timestamp: startDate }],
    });
    return { executionArn, startDate };
  }

  async describeExecution(input: DescribeExecutionInput): Promise<DescribeExecutionOutput> {
    const { history: _history, ...execution } = this.find(input.executionArn);
    return execution;
  }

  async listExecutions(input: ListExecutionsInput): Promise<ListExecutionsOutput> {
    const all = [...this.executions.values()].filter((e) => e.stateMachineArn === input.stateMachineArn);
    const start = input.nextToken ? Number(input.nextToken) : 0;
    const end = start + (input.maxResults || 100);
    return {
      executions: all.slice(start, end).map(({ executionArn, stateMachineArn, name, status, startDate }) => ({
        executionArn,
        stateMachineArn,
        name,
        status,
        startDate,
      })),
      ...(end < all.length ? { nextToken: String(end) } : {}),
    };
  }

  /** The machines executions were started on: the fake has no definitions of its own. */
  async listStateMachines(_input: ListStateMachinesInput): Promise<ListStateMachinesOutput> {
    const arns = new Set([...this.executions.values()].map((e) => e.stateMachineArn!));
    return {
      stateMachines: [...arns].map((arn) => ({
        stateMachineArn: arn,
        name: arn.slice(arn.lastIndexOf(":") + 1),
        type: "STANDARD",
        creationDate: new Date(0),
      })),
    };
  }

  async getExecutionHistory(input: GetExecutionHistoryInput): Promise<GetExecutionHistoryOutput> {
    return { events: this.find(input.executionArn).history };
  }

  async stopExecution(input: StopExecutionInput): Promise<StopExecutionOutput> {
    const execution = this.find(input.executionArn);
    execution.status = "ABORTED";
    execution.stopDate = new Date();
    execution.history.push({ id: 2, type: "ExecutionAborted", timestamp: execution.stopDate });
    return { stopDate: execution.stopDate };
  }

  private find(arn: string | undefined) {
    const execution = this.executions.get(arn ?? "");
    if (!execution) throw new AwsServiceError("ExecutionDoesNotExist", `Execution Does Not Exist: '${arn}'`);
    return execution;
  }
}

/** An event bus that keeps what it was given, refusing any bus but the default one. */
export class FakeEventBus implements EventBusApi {
  readonly received: EventBusEntry[] = [];

  async putEvents(entries: EventBusEntry[]): Promise<PutEventsResultEntry[]> {
    return entries.map((entry) => {
      if (entry.eventBusName !== undefined && entry.eventBusName !== "default")
        return {
          ErrorCode: "InvalidArgument",
          ErrorMessage: `Event bus ${entry.eventBusName} does not exist.`,
        };
      this.received.push(entry);
      return { EventId: randomUUID() };
    });
  }
}

export interface LocalCloud {
  world: LocalEc2;
  stepFunctions: FakeStepFunctions;
  eventBus: FakeEventBus;
  events: AwsEvent[];
  changes: DriveChange[];
  endpoints: LocalAwsEndpoints;
  close(): Promise<void>;
}

/**
 * Starts the endpoints over a fresh world (or a restored one) and points this process's SDK
 * clients at them through the endpoint variables, the only route a client is given.
 */
export async function startLocalCloud(
  options: Partial<LocalEc2Options> = {},
  restoreFrom?: unknown,
): Promise<LocalCloud> {
  const events: AwsEvent[] = [];
  const changes: DriveChange[] = [];
  const listeners = {
    onEvent: (event: AwsEvent) => events.push(event),
    onChange: (c: DriveChange) => changes.push(c),
  };
  const world =
    restoreFrom === undefined
      ? LocalEc2.create(
          { clusterName: "strata-test", nodegroups: ZONES.map((zone) => ({ zone })), ...options },
          listeners,
        )
      : LocalEc2.restore(restoreFrom, listeners);
  const stepFunctions = new FakeStepFunctions();
  const eventBus = new FakeEventBus();
  const endpoints = await startLocalAwsEndpoints({ stepFunctions, eventBus, ec2: world });
  Object.assign(process.env, endpoints.environment, {
    AWS_REGION: "local",
    AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: "true",
  });
  return {
    world,
    stepFunctions,
    eventBus,
    events,
    changes,
    endpoints,
    close: async () => {
      world.close();
      await endpoints.close();
    },
  };
}

export const STATE_MACHINE_ARN = `arn:aws:states:local:${LOCAL_ACCOUNT_ID}:stateMachine:node-loss`;

/** The refusal an SDK call ends in, for asserting on its name and fields. */
export async function refusal(call: Promise<unknown>): Promise<Error & Record<string, unknown>> {
  try {
    await call;
  } catch (error) {
    return error as Error & Record<string, unknown>;
  }
  throw new Error("the call succeeded; a refusal was expected");
}
