import { Duration, RemovalPolicy } from "aws-cdk-lib";
import {
  Alarm,
  ComparisonOperator,
  MathExpression,
  Metric,
  TreatMissingData,
} from "aws-cdk-lib/aws-cloudwatch";
import { SnsAction } from "aws-cdk-lib/aws-cloudwatch-actions";
import { ServicePrincipal } from "aws-cdk-lib/aws-iam";
import { Key } from "aws-cdk-lib/aws-kms";
import { Topic } from "aws-cdk-lib/aws-sns";
import { EmailSubscription } from "aws-cdk-lib/aws-sns-subscriptions";
import { Construct } from "constructs";
import { METRICS_NAMESPACE, type StrataLambdas } from "./lambdas.js";
import type { StrataStateMachines } from "./state-machines.js";

export interface StrataAlarmsProps {
  prefix: string;
  alarmEmail?: string;
  stateMachines: StrataStateMachines;
  lambdas: StrataLambdas;
}

/**
 * What an operator is told about, on one encrypted topic: a workflow execution that failed or
 * timed out (a recovery left a volume short, a cloudsnap or restore failed), heartbeats gone stale
 * (a node or zone found offline), a health sweep that fails or stops running (nobody would notice a
 * lost node), and events parked in a dead-letter queue.
 */
export class StrataAlarms extends Construct {
  readonly topic: Topic;
  readonly alarms: Alarm[] = [];
  private readonly prefix: string;

  constructor(scope: Construct, id: string, props: StrataAlarmsProps) {
    super(scope, id);
    this.prefix = props.prefix;
    // CloudWatch publishes to an encrypted topic only with a key whose policy lets it; AWS's
    // managed SNS key does not.
    const key = new Key(this, "TopicKey", {
      description: `${props.prefix}: encrypts the alarm topic`,
      enableKeyRotation: true,
      removalPolicy: RemovalPolicy.DESTROY,
    });
    key.grant(new ServicePrincipal("cloudwatch.amazonaws.com"), "kms:Decrypt", "kms:GenerateDataKey*");
    this.topic = new Topic(this, "Topic", {
      topicName: `${props.prefix}-alarms`,
      masterKey: key,
      enforceSSL: true,
    });
    if (props.alarmEmail !== undefined) this.topic.addSubscription(new EmailSubscription(props.alarmEmail));

    for (const [workflow, machine] of props.stateMachines.machines) {
      this.add(`${workflow}-failed`, {
        description: `A ${workflow} execution failed or timed out: see its history in the Step Functions console`,
        metric: new MathExpression({
          expression: "FILL(failed, 0) + FILL(timedOut, 0)",
          usingMetrics: {
            failed: machine.metricFailed({ statistic: "Sum" }),
            timedOut: machine.metricTimedOut({ statistic: "Sum" }),
          },
          period: Duration.minutes(5),
          label: `${workflow} executions failed or timed out`,
        }),
        threshold: 1,
        missing: TreatMissingData.NOT_BREACHING,
      });
    }

    // The health sweep's own metric (functions/health-sweep/handler.ts): the nodes offline at its
    // last pass, so the alarm stays on while a node stays lost, and clears when it is back.
    const sweepName = "health-sweep";
    const sweep = props.lambdas.get(sweepName);
    this.add("heartbeats-stale", {
      description:
        "The health sweep finds nodes whose heartbeats are stale: node-loss or az-failure takes them on; watch it in the Step Functions console",
      metric: new Metric({
        namespace: METRICS_NAMESPACE,
        metricName: "NodesOffline",
        // Powertools' service dimension: the function's POWERTOOLS_SERVICE_NAME, its catalog name.
        dimensionsMap: { service: sweepName },
        statistic: "Maximum",
        period: Duration.minutes(1),
      }),
      threshold: 1,
      missing: TreatMissingData.NOT_BREACHING,
    });

    this.add(`${sweepName}-failing`, {
      description: "The health sweep fails: lost heartbeats go unnoticed until it works again",
      metric: sweep.metricErrors({ statistic: "Sum", period: Duration.minutes(5) }),
      threshold: 1,
      missing: TreatMissingData.NOT_BREACHING,
    });
    this.add(`${sweepName}-stopped`, {
      description: "The health sweep has not run for 5 minutes (its schedule is off or failing)",
      metric: sweep.metricInvocations({ statistic: "Sum", period: Duration.minutes(5) }),
      threshold: 1,
      comparison: ComparisonOperator.LESS_THAN_THRESHOLD,
      missing: TreatMissingData.BREACHING,
    });

    for (const [name, queue] of props.lambdas.deadLetterQueues) {
      this.add(`${name}-dead-letters`, {
        description: `Events ${name} could not handle wait in ${queue.queueName}: look at them, then redrive or delete them`,
        metric: queue.metricApproximateNumberOfMessagesVisible({
          statistic: "Maximum",
          period: Duration.minutes(5),
        }),
        threshold: 1,
        missing: TreatMissingData.NOT_BREACHING,
      });
    }
  }

  private add(
    name: string,
    options: {
      description: string;
      metric: Metric | MathExpression;
      threshold: number;
      comparison?: ComparisonOperator;
      missing: TreatMissingData;
    },
  ): void {
    const alarm = new Alarm(this, name, {
      alarmName: `${this.prefix}-${name}`,
      alarmDescription: options.description,
      metric: options.metric,
      threshold: options.threshold,
      evaluationPeriods: 1,
      comparisonOperator: options.comparison ?? ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
      treatMissingData: options.missing,
    });
    alarm.addAlarmAction(new SnsAction(this.topic));
    alarm.addOkAction(new SnsAction(this.topic));
    this.alarms.push(alarm);
  }
}
