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
  ListStateMachinesCommand,
  SFNClient,
  StartExecutionCommand,
  StateMachineDoesNotExist,
} from "@aws-sdk/client-sfn";
import { Command, Option } from "commander";
import { LOCAL_CREDENTIALS, useLocalAws } from "../../core/local-aws-environment.js";
import { ENDPOINT_VARIABLES } from "../../infra/local/aws/endpoints.js";
import { LOCAL_ACCOUNT_ID, localRegion } from "../../infra/local/aws/identity.js";
import { workflowMachine } from "../../infra/local/cloud-names.js";
import { stateMachineArn } from "../../infra/local/step-functions/arns.js";
import { stateMachineName, strataWorkflows, type WorkflowName } from "../../infra/workflows.js";
import { runningCluster } from "../cluster-dir.js";
import { type CliContext, contextOf } from "../context.js";
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
    .description(
      "the workflows (node-loss, az-failure, cloudsnap, restore): their executions and steps, from the local cloud or, with --api, the control plane deployed in AWS",
    );

  workflow
    .command("list")
    .alias("ls")
    .description("list the executions of both workflows, newest first")
    .addOption(new Option("--status <status>", "only executions in this status").choices(STATUSES))
    .addOption(new Option("--workflow <workflow>", "only this workflow's executions").choices(WORKFLOWS))
    .action(async (options: { status?: ExecutionStatus; workflow?: WorkflowName }, command: Command) => {
      const context = contextOf(command);
      const chosen = options.workflow === undefined ? WORKFLOWS : [options.workflow];
      const items = await withWorkflows(context, async (source) =>
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
      const { execution, events } = await withWorkflows(context, async (source) => {
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

/**
 * Runs `use` against the workflows of the cluster the command talks to: a local cluster's cloud, or,
 * when the command talks to an agent by --api (a cluster on EKS), the control plane deployed in AWS.
 */
export async function withWorkflows<T>(
  context: Pick<CliContext, "dir" | "api" | "stackPrefix">,
  use: (source: WorkflowSource) => Promise<T>,
): Promise<T> {
  const source =
    context.api === undefined ? await stepFunctions(context.dir) : deployedStepFunctions(context.stackPrefix);
  try {
    return await use(source);
  } finally {
    source.close();
  }
}

/** The local cloud of the running cluster in `dir`, as its cluster.json names it. */
async function stepFunctions(dir: string): Promise<WorkflowSource> {
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
  const location = { region: localRegion(), account: LOCAL_ACCOUNT_ID };
  const machines = new Map(
    WORKFLOWS.map((workflow) => [workflow, stateMachineArn(location, workflowMachine(workflow))]),
  );
  return workflowSource(
    // The local endpoints take any signature; these keep the SDK from looking for real ones.
    new SFNClient({ endpoint, region: location.region, credentials: LOCAL_CREDENTIALS, maxAttempts: 2 }),
    `the cluster's Step Functions endpoint ${endpoint}`,
    async () => machines,
  );
}

/**
 * The control plane the CDK app deployed (infra/aws): its state machines, `<prefix>-<workflow>`,
 * found by name with ListStateMachines, so neither the account nor the partition has to be known.
 * Region and credentials come from the standard AWS environment, as for the aws CLI.
 */
export function deployedStepFunctions(prefix: string): WorkflowSource {
  const client = new SFNClient({});
  const where = `Step Functions in ${process.env.AWS_REGION ?? "the configured region"}`;
  const list = async () => {
    const byName = new Map<string, string>();
    let nextToken: string | undefined;
    do {
      const page = await client.send(
        new ListStateMachinesCommand({ maxResults: 1000, ...(nextToken === undefined ? {} : { nextToken }) }),
      );
      for (const machine of page.stateMachines ?? []) byName.set(machine.name!, machine.stateMachineArn!);
      nextToken = page.nextToken;
    } while (nextToken);
    const found = new Map<WorkflowName, string>();
    for (const workflow of WORKFLOWS) {
      const arn = byName.get(stateMachineName(prefix, workflow));
      if (arn !== undefined) found.set(workflow, arn);
    }
    if (found.size === 0)
      throw new CliError(
        `${where} has no Strata state machines named ${stateMachineName(prefix, "node-loss")} and so on: ` +
          "deploy the control plane there (docs/deploy-aws.md), or give its prefix with --stack-prefix",
      );
    return found;
  };
  return workflowSource(client, where, list);
}

/**
 * The workflow calls on one Step Functions: `machines` names each workflow's state machine ARN,
 * asked once (an execution's ARN is its machine's with the execution's name), `where` says which
 * service an error is about.
 */
function workflowSource(
  client: SFNClient,
  where: string,
  machines: () => Promise<Map<WorkflowName, string>>,
): WorkflowSource {
  let known: Promise<Map<WorkflowName, string>> | undefined;
  const machinesOnce = () => {
    known ??= call(machines);
    return known;
  };
  const machineArn = async (workflow: WorkflowName) => {
    const arn = (await machinesOnce()).get(workflow);
    if (arn === undefined) throw new CliError(`${where} has no state machine for the ${workflow} workflow`);
    return arn;
  };
  const executionOf = async (workflow: WorkflowName, name: string) =>
    `${(await machineArn(workflow)).replace(":stateMachine:", ":execution:")}:${name}`;
  const call = async <T>(send: () => Promise<T>): Promise<T> => {
    try {
      return await send();
    } catch (error) {
      if (error instanceof StateMachineDoesNotExist)
        throw new CliError(`${where} has no Strata state machines: ${error.message}`);
      if (error instanceof ExecutionDoesNotExist || error instanceof InvalidArn) throw error;
      throw awsCallFailure(error, where);
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
      const stateMachineArn = await machineArn(workflow);
      let nextToken: string | undefined;
      do {
        const page = await call(() =>
          client.send(
            new ListExecutionsCommand({
              stateMachineArn,
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
          [...(await machinesOnce()).keys()].map(async (workflow) =>
            describe(await executionOf(workflow, nameOrArn)),
          ),
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
      const stateMachineArn = await machineArn(workflow);
      const started = await call(() =>
        client.send(
          new StartExecutionCommand({
            stateMachineArn,
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

/**
 * An AWS call's failure as one sentence where the cause is the environment (nothing listening, no
 * region, no credentials); anything else as it came.
 */
function awsCallFailure(error: unknown, where: string): unknown {
  if (error instanceof CliError) return error;
  const { code, name, message } = error as { code?: string; name?: string; message?: string };
  if (code === "ECONNREFUSED") return new CliError(`${where} does not answer`);
  if (name === "CredentialsProviderError")
    return new CliError(`no AWS credentials to call ${where} with (${message})`);
  if (message === "Region is missing")
    return new CliError("set AWS_REGION to the region the Strata control plane is deployed in");
  return error;
}
