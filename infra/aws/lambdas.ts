import { join } from "node:path";
import { Duration, RemovalPolicy, type Stack, Validations } from "aws-cdk-lib";
import { PolicyStatement, Role, ServicePrincipal } from "aws-cdk-lib/aws-iam";
import { Architecture, type IFunction, Runtime } from "aws-cdk-lib/aws-lambda";
import { NodejsFunction, OutputFormat } from "aws-cdk-lib/aws-lambda-nodejs";
import { LogGroup, RetentionDays } from "aws-cdk-lib/aws-logs";
import { Queue, QueueEncryption } from "aws-cdk-lib/aws-sqs";
import { Construct } from "constructs";
import { type StrataFunction, strataFunctions } from "../workflows.js";
import { grantsOf } from "./function-access.js";
import { type GrantScope, grantStatements } from "./function-roles.js";
import { allow } from "./reasoned-statements.js";

/** The newest Node.js runtime aws-cdk-lib offers; the code runs on 20 to 24. */
export const FUNCTION_RUNTIME = Runtime.NODEJS_24_X;
/** esbuild's target for that runtime. */
export const BUNDLE_TARGET = "node24";
/** Powertools' metric namespace, as the local cloud names it (infra/local/cloud.ts). */
export const METRICS_NAMESPACE = "Strata";

/**
 * The functions invoked asynchronously (EventBridge rules, Scheduler), which get a dead-letter
 * queue: the others are tasks Step Functions invokes synchronously and retries itself.
 */
export const ASYNC_FUNCTIONS = ["event-intake", "health-sweep"] as const;
export type AsyncFunctionName = (typeof ASYNC_FUNCTIONS)[number];

export interface StrataLambdasProps {
  /** The project root: functions/<name>/handler.ts and package-lock.json are found from it. */
  projectRoot: string;
  prefix: string;
  clusterName: string;
  logLevel: string;
  sweepsPerMinute: number;
  tableName: string;
  bucketName: string;
  eventBusName: string;
  scope: Omit<GrantScope, "stateMachines">;
}

/**
 * Every Lambda of the catalog (infra/workflows.ts), bundled from its handler.ts by the local
 * esbuild, each with its own role holding what infra/aws/function-access.ts says it calls.
 */
export class StrataLambdas extends Construct {
  readonly functions = new Map<string, NodejsFunction>();
  readonly roles = new Map<string, Role>();
  readonly deadLetterQueues = new Map<AsyncFunctionName, Queue>();

  constructor(scope: Construct, id: string, props: StrataLambdasProps) {
    super(scope, id);
    for (const name of ASYNC_FUNCTIONS)
      this.deadLetterQueues.set(name, this.deadLetterQueue(`${props.prefix}-${name}`, name));
    for (const definition of strataFunctions) this.add(definition, props);
  }

  /** The function `name` of the catalog, or an error naming it. */
  get(name: string): IFunction {
    const fn = this.functions.get(name);
    if (fn === undefined) throw new Error(`the catalog has no function ${name}`);
    return fn;
  }

  /**
   * Gives each function the statements its grants need, once the state machines exist (event
   * intake starts two of them, and the state machines invoke the functions).
   */
  grantAll(stack: Stack, scope: GrantScope): void {
    for (const [name, role] of this.roles) allow(role, role, grantStatements(stack, grantsOf(name), scope));
  }

  private add(definition: StrataFunction, props: StrataLambdasProps): void {
    const functionName = `${props.prefix}-${definition.name}`;
    const logGroup = new LogGroup(this, `${definition.name}-logs`, {
      logGroupName: `/aws/lambda/${functionName}`,
      retention: RetentionDays.ONE_MONTH,
      removalPolicy: RemovalPolicy.DESTROY,
    });
    // Its own role, not Lambda's managed basic-execution policy: logs to its own group only.
    const role = new Role(this, `${definition.name}-role`, {
      assumedBy: new ServicePrincipal("lambda.amazonaws.com"),
      description: `${functionName}: ${definition.description}`,
    });
    role.addToPrincipalPolicy(
      new PolicyStatement({
        actions: ["logs:CreateLogStream", "logs:PutLogEvents"],
        resources: [logGroup.logGroupArn],
      }),
    );
    const deadLetterQueue = this.deadLetterQueues.get(definition.name as AsyncFunctionName);
    const fn = new NodejsFunction(this, definition.name, {
      functionName,
      description: definition.description,
      entry: join(props.projectRoot, "functions", definition.name, "handler.ts"),
      handler: "handler",
      projectRoot: props.projectRoot,
      depsLockFilePath: join(props.projectRoot, "package-lock.json"),
      runtime: FUNCTION_RUNTIME,
      architecture: Architecture.ARM_64,
      memorySize: functionMemory(definition.name),
      timeout: functionTimeout(definition.name),
      role,
      logGroup,
      environment: {
        POWERTOOLS_SERVICE_NAME: definition.name,
        POWERTOOLS_METRICS_NAMESPACE: METRICS_NAMESPACE,
        POWERTOOLS_LOG_LEVEL: props.logLevel,
        STRATA_STATE_TABLE: props.tableName,
        STRATA_CLUSTER_NAME: props.clusterName,
        STRATA_EVENT_BUS: props.eventBusName,
        // Minified bundles: errors are reported at their TypeScript lines.
        NODE_OPTIONS: "--enable-source-maps",
        ...(grantsOf(definition.name).some((grant) => grant.kind === "cloudsnap-catalogs")
          ? { STRATA_CLOUDSNAP_BUCKET: props.bucketName }
          : {}),
        ...(definition.name === "health-sweep"
          ? { STRATA_SWEEPS_PER_INVOCATION: String(props.sweepsPerMinute) }
          : {}),
      },
      ...(deadLetterQueue === undefined ? {} : { deadLetterQueue, retryAttempts: 2 }),
      bundling: {
        format: OutputFormat.ESM,
        target: BUNDLE_TARGET,
        // The SDK goes into the bundle: the versions the tests ran, not the runtime's.
        bundleAwsSDK: true,
        minify: true,
        sourceMap: true,
        sourcesContent: false,
        mainFields: ["module", "main"],
        // Some dependencies are CommonJS and call require(); an ES module has none of its own.
        banner:
          "import { createRequire as strataCreateRequire } from 'node:module'; const require = strataCreateRequire(import.meta.url);",
        forceDockerBundling: false,
      },
    });
    this.functions.set(definition.name, fn);
    this.roles.set(definition.name, role);
  }

  private deadLetterQueue(functionName: string, name: AsyncFunctionName): Queue {
    const queue = new Queue(this, `${name}-dlq`, {
      queueName: `${functionName}-dead-letters`,
      encryption: QueueEncryption.SQS_MANAGED,
      enforceSSL: true,
      retentionPeriod: Duration.days(14),
    });
    Validations.of(queue).acknowledge({
      id: "AwsSolutions-SQS3",
      reason: `This queue is itself the dead-letter queue of ${functionName}'s asynchronous invocations; a queue behind it would only move the same messages again.`,
    });
    return queue;
  }
}

/**
 * The health sweep spends its minute mostly waiting for the next sweep, and Lambda bills that
 * wait by memory: it gets less than the tasks, whose cold start the bigger CPU share shortens.
 */
function functionMemory(name: string): number {
  return name === "health-sweep" ? 256 : 512;
}

/**
 * The health sweep runs through its minute (several sweeps); the workflow tasks make a handful of
 * table and EC2 calls, but a plan over many volumes reads them all.
 */
function functionTimeout(name: string): Duration {
  return name === "health-sweep" ? Duration.seconds(90) : Duration.seconds(60);
}
