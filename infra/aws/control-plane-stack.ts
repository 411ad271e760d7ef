import { CfnOutput, Duration, RemovalPolicy, Stack, type StackProps, Validations } from "aws-cdk-lib";
import { AttributeType, BillingMode, Table } from "aws-cdk-lib/aws-dynamodb";
import { type EventPattern as CdkEventPattern, EventBus, Rule } from "aws-cdk-lib/aws-events";
import { LambdaFunction } from "aws-cdk-lib/aws-events-targets";
import { PolicyStatement, Role, ServicePrincipal } from "aws-cdk-lib/aws-iam";
import { Key } from "aws-cdk-lib/aws-kms";
import type { IFunction } from "aws-cdk-lib/aws-lambda";
import { BlockPublicAccess, Bucket, BucketEncryption, ObjectOwnership } from "aws-cdk-lib/aws-s3";
import {
  type ISchedule,
  type IScheduleTarget,
  Schedule,
  ScheduleExpression,
  type ScheduleTargetConfig,
  ScheduleTargetInput,
  TimeWindow,
} from "aws-cdk-lib/aws-scheduler";
import { StepFunctionsStartExecution } from "aws-cdk-lib/aws-scheduler-targets";
import type { IQueue } from "aws-cdk-lib/aws-sqs";
import type { Construct } from "constructs";
import { stateTableDefinition } from "../../core/state/table.js";
import { type EventPattern, strataEventRules } from "../event-rules.js";
import { strataSchedules } from "../schedules.js";
import { AgentPodRole } from "./agent-role.js";
import { StrataAlarms } from "./alarms.js";
import { StrataLambdas } from "./lambdas.js";
import type { DeploymentSettings } from "./settings.js";
import { StrataStateMachines } from "./state-machines.js";

export interface ControlPlaneStackProps extends StackProps {
  settings: DeploymentSettings;
  projectRoot: string;
}

/** The source of the AWS events the rules of infra/event-rules.ts match, all on the default bus. */
const AWS_SOURCE = /^aws\./;

/**
 * Strata's control plane in one account and region: the state table, the cloudsnap bucket and its
 * key, Strata's event bus, the Lambdas, the workflows' state machines, the rules and schedules that
 * start them, alarms, and the agent pods' role. Environment-agnostic: nothing here needs an account
 * to synthesize.
 */
export class ControlPlaneStack extends Stack {
  readonly table: Table;
  readonly bucket: Bucket;
  readonly key: Key;
  readonly eventBus: EventBus;
  readonly lambdas: StrataLambdas;
  readonly stateMachines: StrataStateMachines;

  constructor(scope: Construct, id: string, props: ControlPlaneStackProps) {
    super(scope, id, props);
    const { settings } = props;

    this.key = new Key(this, "CloudsnapKey", {
      description: `${settings.prefix}: wraps cloudsnap data keys and encrypts the cloudsnap bucket`,
      enableKeyRotation: true,
      removalPolicy: RemovalPolicy.RETAIN,
    });
    this.table = stateTable(this, settings.prefix);
    this.bucket = cloudsnapBucket(this, settings, this.key);
    // Strata's own events on a bus of the stack's: clusters sharing an account never see each
    // other's. AWS's events arrive on the default bus only, so their rules are there.
    this.eventBus = new EventBus(this, "Events", { eventBusName: `${settings.prefix}-events` });

    const scope0 = {
      tableArn: this.table.tableArn,
      bucketArn: this.bucket.bucketArn,
      keyArn: this.key.keyArn,
      eventBusArn: this.eventBus.eventBusArn,
      clusterName: settings.clusterName,
      nodeGroups: settings.nodeGroups,
      zones: settings.zones,
    };
    this.lambdas = new StrataLambdas(this, "Functions", {
      projectRoot: props.projectRoot,
      prefix: settings.prefix,
      clusterName: settings.clusterName,
      logLevel: settings.logLevel,
      sweepsPerMinute: settings.sweepsPerMinute,
      tableName: this.table.tableName,
      bucketName: this.bucket.bucketName,
      eventBusName: this.eventBus.eventBusName,
      scope: scope0,
    });
    this.stateMachines = new StrataStateMachines(this, "Workflows", {
      projectRoot: props.projectRoot,
      prefix: settings.prefix,
      lambdas: this.lambdas,
    });
    this.lambdas.grantAll(this, {
      ...scope0,
      stateMachines: new Map(
        [...this.stateMachines.machines].map(([workflow, machine]) => [
          workflow,
          { arn: machine.stateMachineArn, name: machine.stateMachineName },
        ]),
      ),
    });
    const intake = this.lambdas.functions.get("event-intake")!;
    intake.addEnvironment(
      "STRATA_NODE_LOSS_STATE_MACHINE_ARN",
      this.stateMachines.get("node-loss").stateMachineArn,
    );
    intake.addEnvironment(
      "STRATA_AZ_FAILURE_STATE_MACHINE_ARN",
      this.stateMachines.get("az-failure").stateMachineArn,
    );

    this.addRules(settings.prefix);
    this.addSchedules(settings);
    const agent = new AgentPodRole(this, "Agent", {
      clusterName: settings.clusterName,
      table: this.table,
      bucket: this.bucket,
      key: this.key,
    });
    new StrataAlarms(this, "Alarms", {
      prefix: settings.prefix,
      ...(settings.alarmEmail === undefined ? {} : { alarmEmail: settings.alarmEmail }),
      stateMachines: this.stateMachines,
      lambdas: this.lambdas,
    });

    // What the agent DaemonSet's ConfigMap and an operator's CLI need.
    new CfnOutput(this, "StateTableName", { value: this.table.tableName });
    new CfnOutput(this, "CloudsnapBucketName", { value: this.bucket.bucketName });
    new CfnOutput(this, "CloudsnapKeyArn", { value: this.key.keyArn });
    new CfnOutput(this, "EventBusName", { value: this.eventBus.eventBusName });
    new CfnOutput(this, "AgentRoleArn", { value: agent.role.roleArn });
    for (const [workflow, machine] of this.stateMachines.machines)
      new CfnOutput(this, `${pascal(workflow)}StateMachineArn`, { value: machine.stateMachineArn });
  }

  /** Each rule of infra/event-rules.ts, its pattern as is, delivering to event intake. */
  private addRules(prefix: string): void {
    const intake = this.lambdas.get("event-intake");
    const deadLetterQueue = this.lambdas.deadLetterQueues.get("event-intake")!;
    for (const definition of strataEventRules) {
      const sources = definition.eventPattern["source"];
      const fromAws = Array.isArray(sources) && sources.every((source) => AWS_SOURCE.test(String(source)));
      new Rule(this, `Rule-${definition.name}`, {
        ruleName: `${prefix}-${definition.name}`,
        description: definition.description,
        ...(fromAws ? {} : { eventBus: this.eventBus }),
        eventPattern: asCdkPattern(definition.eventPattern),
        targets: [
          new LambdaFunction(intake, { deadLetterQueue, retryAttempts: 8, maxEventAge: Duration.hours(1) }),
        ],
      });
    }
  }

  /**
   * The schedules of infra/schedules.ts, each starting its workflow with its input, and the health
   * sweep every minute. No flexible window: a schedule's slot should not slide.
   */
  private addSchedules(settings: DeploymentSettings): void {
    for (const definition of strataSchedules) {
      const machine = this.stateMachines.get(definition.workflow);
      new Schedule(this, `Schedule-${definition.name}`, {
        scheduleName: `${settings.prefix}-${definition.name}`,
        description: definition.description,
        schedule: ScheduleExpression.expression(
          settings.schedules[definition.name] ?? definition.scheduleExpression,
        ),
        timeWindow: TimeWindow.off(),
        target: new StepFunctionsStartExecution(machine, {
          input: ScheduleTargetInput.fromObject(definition.input),
          retryAttempts: 3,
          maxEventAge: Duration.minutes(5),
        }),
      });
    }
    new Schedule(this, "Schedule-health-sweep", {
      scheduleName: `${settings.prefix}-health-sweep`,
      description: "Starts the health sweep: it sweeps the nodes' heartbeats through the minute",
      schedule: ScheduleExpression.rate(Duration.minutes(1)),
      timeWindow: TimeWindow.off(),
      target: new SweepTarget(
        this.lambdas.get("health-sweep"),
        this.lambdas.deadLetterQueues.get("health-sweep")!,
      ),
    });
  }
}

/**
 * The health sweep as a Scheduler target, with a role that may invoke that one function (not its
 * versions, which Scheduler never names) and park a failed start in its dead-letter queue. A sweep
 * that could not start is not retried: the next minute's overtakes it.
 */
class SweepTarget implements IScheduleTarget {
  constructor(
    private readonly sweep: IFunction,
    private readonly deadLetterQueue: IQueue,
  ) {}

  bind(schedule: ISchedule): ScheduleTargetConfig {
    const role = new Role(schedule, "Role", {
      assumedBy: new ServicePrincipal("scheduler.amazonaws.com").withConditions({
        StringEquals: { "aws:SourceAccount": Stack.of(schedule).account },
      }),
      description: "EventBridge Scheduler: starts the health sweep",
    });
    role.addToPrincipalPolicy(
      new PolicyStatement({ actions: ["lambda:InvokeFunction"], resources: [this.sweep.functionArn] }),
    );
    role.addToPrincipalPolicy(
      new PolicyStatement({ actions: ["sqs:SendMessage"], resources: [this.deadLetterQueue.queueArn] }),
    );
    return {
      arn: this.sweep.functionArn,
      role,
      retryPolicy: { maximumRetryAttempts: 0, maximumEventAgeInSeconds: 60 },
      deadLetterConfig: { arn: this.deadLetterQueue.queueArn },
    };
  }
}

/** The table of core/state/table.ts: the same key schema, on demand, recoverable, undeletable. */
function stateTable(stack: Stack, prefix: string): Table {
  const definition = stateTableDefinition(`${prefix}-state`);
  const attribute = (keyType: "HASH" | "RANGE") => {
    const name = definition.KeySchema?.find((key) => key.KeyType === keyType)?.AttributeName;
    if (name === undefined) throw new Error(`core/state/table.ts defines no ${keyType} key`);
    return { name, type: AttributeType.STRING };
  };
  return new Table(stack, "StateTable", {
    tableName: definition.TableName,
    partitionKey: attribute("HASH"),
    sortKey: attribute("RANGE"),
    billingMode: BillingMode.PAY_PER_REQUEST,
    pointInTimeRecoverySpecification: { pointInTimeRecoveryEnabled: true },
    deletionProtection: true,
    // Finished operations, request tokens and idempotency records carry their expiry here.
    timeToLiveAttribute: "expiresAt",
    removalPolicy: RemovalPolicy.RETAIN,
  });
}

/**
 * Cloudsnaps: versioned (a deleted or overwritten catalog can be recovered for 30 days), private,
 * TLS only, encrypted with the stack's key (a bucket key keeps KMS requests per object few).
 */
function cloudsnapBucket(stack: Stack, settings: DeploymentSettings, key: Key): Bucket {
  const accessLogs = new Bucket(stack, "CloudsnapAccessLogs", {
    blockPublicAccess: BlockPublicAccess.BLOCK_ALL,
    encryption: BucketEncryption.S3_MANAGED,
    enforceSSL: true,
    objectOwnership: ObjectOwnership.BUCKET_OWNER_ENFORCED,
    lifecycleRules: [{ expiration: Duration.days(90) }],
    removalPolicy: RemovalPolicy.RETAIN,
  });
  Validations.of(accessLogs).acknowledge({
    id: "AwsSolutions-S1",
    reason:
      "This bucket receives the cloudsnap bucket's server access logs; logging its own accesses would log the log deliveries themselves.",
  });
  return new Bucket(stack, "CloudsnapBucket", {
    ...(settings.bucketName === undefined ? {} : { bucketName: settings.bucketName }),
    versioned: true,
    blockPublicAccess: BlockPublicAccess.BLOCK_ALL,
    enforceSSL: true,
    encryption: BucketEncryption.KMS,
    encryptionKey: key,
    bucketKeyEnabled: true,
    objectOwnership: ObjectOwnership.BUCKET_OWNER_ENFORCED,
    serverAccessLogsBucket: accessLogs,
    serverAccessLogsPrefix: "cloudsnaps/",
    lifecycleRules: [
      { abortIncompleteMultipartUploadAfter: Duration.days(1) },
      { noncurrentVersionExpiration: Duration.days(30), expiredObjectDeleteMarker: true },
    ],
    removalPolicy: RemovalPolicy.RETAIN,
  });
}

/**
 * CDK's EventPattern spells only `detail-type` differently (`detailType`) and renders it back; every
 * other field, `detail` included, goes to the template as given. So the deployed pattern is the
 * object of infra/event-rules.ts, which the tests compare with the template.
 */
function asCdkPattern(pattern: EventPattern): CdkEventPattern {
  const { "detail-type": detailType, ...rest } = pattern;
  return { ...rest, ...(detailType === undefined ? {} : { detailType }) } as CdkEventPattern;
}

const pascal = (name: string) =>
  name
    .split("-")
    .map((part) => part.charAt(0).toUpperCase() + part.slice(1))
    .join("");
