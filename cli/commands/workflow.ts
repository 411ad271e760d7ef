import {
  DescribeExecutionCommand,
  type DescribeExecutionOutput,
  ExecutionDoesNotExist,
  type ExecutionListItem,
  type ExecutionStatus,
  GetExecutionHistoryCommand,
  type HistoryEvent,
  InvalidArn,
  ListExecutionsCommand,
  SFNClient,
  StartExecutionCommand,
  StateMachineDoesNotExist,
} from "@aws-sdk/client-sfn";
import { Command, Option } from "commander";
import { useLocalAws } from "../../core/local-aws-environment.js";
import { ENDPOINT_VARIABLES } from "../../infra/local/aws/endpoints.js";
import { LOCAL_ACCOUNT_ID, localRegion } from "../../infra/local/aws/identity.js";
import { workflowMachine } from "../../infra/local/cloud-names.js";
import { executionArn, stateMachineArn } from "../../infra/local/step-functions/arns.js";
import { strataWorkflows, type WorkflowName } from "../../infra/workflows.js";
import { runningCluster } from "../cluster-dir.js";
import { contextOf } from "../context.js";
import { CliError } from "../failures.js";
import { print } from "../output.js";
import { workflowSteps } from "../workflow-steps.js";
import { workflowDescription, workflowExecution, workflowTable } from "../workflow-views.js";

const STATUSES: readonly ExecutionStatus[] = ["RUNNING", "SUCCEEDED", "FAILED", "ABORTED", "TIMED_OUT"];
const WORKFLOWS = strataWorkflows.map(({ name }) => name);

/** The recovery workflows' executions, from the local cloud's Step Functions through the AWS SDK. */
export function workflowCommand(): Command {
  const workflow = new Command("workflow")
    .alias("workflows")
    .alias("wf")
    .description("the recovery workflows (node-loss, az-failure): their executions and steps");

  workflow
    .command("list")
    .alias("ls")
    .description("list the executions of both workflows, newest first")
    .addOption(new Option("--status <status>", "only executions in this status").choices(STATUSES))
    .addOption(new Option("--workflow <workflow>", "only this workflow's executions").choices(WORKFLOWS))
    .action(async (options: { status?: ExecutionStatus; workflow?: WorkflowName }, command: Command) => {
      const context = contextOf(command);
      const chosen = options.workflow === undefined ? WORKFLOWS : [options.workflow];
      const items = await withWorkflows(context.dir, async (source) =>
        (await Promise.all(chosen.map((name) => source.listExecutions(name, options.status)))).flat(),
      );
      const executions = items
        .map(workflowExecution)
        .sort((a, b) => Date.parse(b.startDate) - Date.parse(a.startDate));
      context.emit({ executions }, () =>
        print(executions.length === 0 ? noneMessage(options) : workflowTable(executions)),
      );
    });

  workflow
    .command("show")
    .description("describe an execution: status, input, error, and every state it went through")
    .argument("<execution>", "execution name (as `workflow list` shows it) or ARN")
    .action(async (nameOrArn: string, _options: object, command: Command) => {
      const context = contextOf(command);
      const { execution, events } = await withWorkflows(context.dir, async (source) => {
        const execution = await source.find(nameOrArn);
        return { execution, events: await source.history(execution.executionArn!) };
      });
      const { steps, uncertainMaps } = workflowSteps(events, execution);
      context.emit({ execution, steps, uncertainMaps, events }, () =>
        print(workflowDescription(execution, steps, uncertainMaps)),
      );
    });

  return workflow;
}

function noneMessage(options: { status?: string; workflow?: string }): string {
  if (options.status === undefined && options.workflow === undefined) return "No workflows have run.";
  const what = options.workflow === undefined ? "workflow" : options.workflow;
  const status = options.status === undefined ? "" : ` ${options.status}`;
  return `No${status} ${what} executions.`;
}

/** The calls the workflow views make, on the Step Functions endpoint of the cluster in `dir`. */
export interface WorkflowSource {
  listExecutions(workflow: WorkflowName, status?: ExecutionStatus): Promise<ExecutionListItem[]>;
  /** The execution with this ARN, or this name in either workflow; refused when not exactly one. */
  find(nameOrArn: string): Promise<DescribeExecutionOutput>;
  history(executionArn: string): Promise<HistoryEvent[]>;
  /** Starts an execution of `workflow`; its ARN. */
  start(workflow: WorkflowName, name: string, input: object): Promise<string>;
  close(): void;
}

export async function withWorkflows<T>(dir: string, use: (source: WorkflowSource) => Promise<T>): Promise<T> {
  const source = await stepFunctions(dir);
  try {
    return await use(source);
  } finally {
    source.close();
  }
}

/** The local cloud of the running cluster in `dir`, as its cluster.json names it. */
export async function stepFunctions(dir: string): Promise<WorkflowSource> {
  const cluster = await runningCluster(dir);
  const endpoint = cluster.cloud?.endpoints[ENDPOINT_VARIABLES.stepFunctions];
  if (endpoint === undefined)
    throw new CliError(
      `the Strata cluster in ${dir} runs no local cloud (its cluster.json names no Step Functions endpoint): ` +
        "restart it with `strata cluster up`",
    );
  // As `cluster status` does: the local cluster's region and placeholder credentials, and no SDK
  // warning about Node versions on every command.
  useLocalAws(cluster.dynamodb.endpoint);
  return workflowSource(endpoint, localRegion());
}

/** `region` must be the one the cluster's ARNs carry ("local" for a local cluster). */
export function workflowSource(endpoint: string, region: string): WorkflowSource {
  const client = new SFNClient({
    endpoint,
    region,
    // The local endpoints take any signature; these keep the SDK from looking for real ones.
    credentials: { accessKeyId: "local", secretAccessKey: "local" },
    maxAttempts: 2,
  });
  const location = { region, account: LOCAL_ACCOUNT_ID };
  const machineArn = (workflow: WorkflowName) => stateMachineArn(location, workflowMachine(workflow));
  const call = async <T>(send: () => Promise<T>): Promise<T> => {
    try {
      return await send();
    } catch (error) {
      if (error instanceof StateMachineDoesNotExist)
        throw new CliError(
          `the Step Functions at ${endpoint} has no Strata state machines in region "${region}"`,
        );
      if (error instanceof ExecutionDoesNotExist || error instanceof InvalidArn) throw error;
      const code = (error as { code?: string }).code;
      if (code === "ECONNREFUSED")
        throw new CliError(`the cluster's Step Functions endpoint ${endpoint} does not answer`);
      throw error;
    }
  };
  const describe = async (arn: string) => {
    try {
      return await call(() => client.send(new DescribeExecutionCommand({ executionArn: arn })));
    } catch (error) {
      // A name Step Functions would refuse (a colon, a space) names no execution either.
      if (error instanceof ExecutionDoesNotExist || error instanceof InvalidArn) return undefined;
      throw error;
    }
  };

  return {
    async listExecutions(workflow, status) {
      const items: ExecutionListItem[] = [];
      let nextToken: string | undefined;
      do {
        const page = await call(() =>
          client.send(
            new ListExecutionsCommand({
              stateMachineArn: machineArn(workflow),
              maxResults: 1000,
              ...(status === undefined ? {} : { statusFilter: status }),
              ...(nextToken === undefined ? {} : { nextToken }),
            }),
          ),
        );
        items.push(...(page.executions ?? []));
        nextToken = page.nextToken;
      } while (nextToken);
      return items;
    },

    async find(nameOrArn) {
      if (nameOrArn.startsWith("arn:")) {
        const execution = await describe(nameOrArn);
        if (!execution) throw new CliError(`no workflow execution ${nameOrArn}`);
        return execution;
      }
      const found = (
        await Promise.all(
          WORKFLOWS.map((workflow) => describe(executionArn(location, workflowMachine(workflow), nameOrArn))),
        )
      ).filter((execution) => execution !== undefined);
      if (found.length === 0) throw new CliError(`no workflow execution named "${nameOrArn}"`);
      if (found.length > 1)
        throw new CliError(
          `both workflows have an execution named "${nameOrArn}": give its ARN, ` +
            found.map((execution) => execution.executionArn).join(" or "),
        );
      return found[0]!;
    },

    async history(arn) {
      const events: HistoryEvent[] = [];
      let nextToken: string | undefined;
      do {
        const page = await call(() =>
          client.send(
            new GetExecutionHistoryCommand({
              executionArn: arn,
              maxResults: 1000,
              ...(nextToken === undefined ? {} : { nextToken }),
            }),
          ),
        );
        events.push(...(page.events ?? []));
        nextToken = page.nextToken;
      } while (nextToken);
      return events;
    },

    async start(workflow, name, input) {
      const started = await call(() =>
        client.send(
          new StartExecutionCommand({
            stateMachineArn: machineArn(workflow),
            name,
            input: JSON.stringify(input),
          }),
        ),
      );
      return started.executionArn!;
    },

    close: () => client.destroy(),
  };
}
