import { readFileSync } from "node:fs";
import { join } from "node:path";
import { RemovalPolicy, Validations } from "aws-cdk-lib";
import { PolicyStatement } from "aws-cdk-lib/aws-iam";
import { LogGroup, RetentionDays } from "aws-cdk-lib/aws-logs";
import { DefinitionBody, LogLevel, StateMachine, StateMachineType } from "aws-cdk-lib/aws-stepfunctions";
import { Construct } from "constructs";
import {
  type StrataWorkflow,
  stateMachineName,
  strataFunctions,
  strataWorkflows,
  type WorkflowName,
} from "../workflows.js";
import type { StrataLambdas } from "./lambdas.js";

/** `${Name}`: a DefinitionSubstitutions placeholder, as the local cloud reads them too. */
const PLACEHOLDER = /\$\{([^}]*)\}/g;

/** The placeholders an ASL text uses, each once, in order of appearance. */
export function placeholdersIn(definition: string): string[] {
  return [...new Set([...definition.matchAll(PLACEHOLDER)].map((match) => match[1]!))];
}

export interface StrataStateMachinesProps {
  projectRoot: string;
  prefix: string;
  lambdas: StrataLambdas;
}

/**
 * One Standard state machine per workflow of the catalog, from its very ASL file: the definition
 * is the file's text, its `${…FunctionArn}` placeholders resolved by CloudFormation from
 * DefinitionSubstitutions, as the local cloud resolves them with its own ARNs.
 */
export class StrataStateMachines extends Construct {
  readonly machines = new Map<WorkflowName, StateMachine>();

  constructor(scope: Construct, id: string, props: StrataStateMachinesProps) {
    super(scope, id);
    for (const workflow of strataWorkflows) this.machines.set(workflow.name, this.add(workflow, props));
  }

  get(workflow: WorkflowName): StateMachine {
    const machine = this.machines.get(workflow);
    if (machine === undefined) throw new Error(`no state machine for the ${workflow} workflow`);
    return machine;
  }

  private add(workflow: StrataWorkflow, props: StrataStateMachinesProps): StateMachine {
    const file = join(props.projectRoot, workflow.definitionFile);
    const definition = readFileSync(file, "utf8");
    // Only the functions the file names: each is a substitution and an invoke grant.
    const invoked = placeholdersIn(definition).map((placeholder) => {
      const fn = strataFunctions.find((candidate) => candidate.substitution === placeholder);
      if (fn === undefined)
        throw new Error(
          `${workflow.definitionFile}: \${${placeholder}} names no function of infra/workflows.ts`,
        );
      return { placeholder, fn: props.lambdas.get(fn.name) };
    });
    const name = stateMachineName(props.prefix, workflow.name);
    const logGroup = new LogGroup(this, `${workflow.name}-logs`, {
      // Step Functions' console finds the logs of a machine under /aws/vendedlogs/states/.
      logGroupName: `/aws/vendedlogs/states/${name}`,
      retention: RetentionDays.ONE_MONTH,
      removalPolicy: RemovalPolicy.DESTROY,
    });
    const machine = new StateMachine(this, workflow.name, {
      stateMachineName: name,
      stateMachineType: StateMachineType.STANDARD,
      definitionBody: DefinitionBody.fromString(definition),
      definitionSubstitutions: Object.fromEntries(
        invoked.map(({ placeholder, fn }) => [placeholder, fn.functionArn]),
      ),
      logs: { destination: logGroup, level: LogLevel.ALL, includeExecutionData: true },
      tracingEnabled: true,
    });
    // The files invoke each function by its unqualified ARN: no version or alias is needed.
    machine.addToRolePolicy(
      new PolicyStatement({
        actions: ["lambda:InvokeFunction"],
        resources: invoked.map(({ fn }) => fn.functionArn),
      }),
    );
    acknowledgeServiceWildcards(machine);
    return machine;
  }
}

/**
 * What Step Functions' own features need and IAM offers only as `*`: log delivery (the CloudWatch
 * Logs delivery APIs take no resource) and X-Ray (PutTraceSegments and PutTelemetryRecords take
 * none). CDK adds these statements for `logs` and `tracingEnabled`.
 */
function acknowledgeServiceWildcards(machine: StateMachine): void {
  Validations.of(machine.role).acknowledge({
    id: "AwsSolutions-IAM5[Resource::*]",
    reason:
      "Step Functions' log delivery (logs:CreateLogDelivery, GetLogDelivery, UpdateLogDelivery, DeleteLogDelivery, ListLogDeliveries, PutResourcePolicy, DescribeResourcePolicies, DescribeLogGroups) and X-Ray tracing (xray:PutTraceSegments, PutTelemetryRecords, GetSamplingRules, GetSamplingTargets) accept no resource but `*`.",
  });
}
