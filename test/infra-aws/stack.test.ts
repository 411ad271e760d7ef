import { readFileSync } from "node:fs";
import { join } from "node:path";
import { type CfnElement, Validations } from "aws-cdk-lib";
import { Match } from "aws-cdk-lib/assertions";
import { AwsSolutionsChecks } from "cdk-nag";
import { beforeAll, describe, expect, it } from "vitest";
import { stateTableDefinition } from "../../core/state/table.js";
import { PROJECT_ROOT } from "../../infra/aws/app.js";
import { DESCRIBE_ONLY_STAR } from "../../infra/aws/function-roles.js";
import { FUNCTION_RUNTIME } from "../../infra/aws/lambdas.js";
import { placeholdersIn } from "../../infra/aws/state-machines.js";
import { strataEventRules } from "../../infra/event-rules.js";
import { substitute } from "../../infra/local/step-functions/definitions.js";
import { strataSchedules } from "../../infra/schedules.js";
import { strataFunctions, strataWorkflows } from "../../infra/workflows.js";
import { asList, type CfnStatement, type Synthesized, statementsOfRole, synthesize } from "./support.js";

let synthesized: Synthesized;
const resources = (type: string) => synthesized.template.findResources(type);
const idOf = (construct: { node: { defaultChild?: unknown } }) =>
  synthesized.stack.getLogicalId(construct.node.defaultChild as CfnElement);

beforeAll(() => {
  synthesized = synthesize();
});

describe("the control plane stack, synthesized with cdk.json's defaults", () => {
  it("has one of each store, every function of the catalog and a state machine per workflow", () => {
    const { template } = synthesized;
    template.resourceCountIs("AWS::DynamoDB::Table", 1);
    // The cloudsnap bucket and the bucket of its access logs.
    template.resourceCountIs("AWS::S3::Bucket", 2);
    // The cloudsnap key and the alarm topic's.
    template.resourceCountIs("AWS::KMS::Key", 2);
    template.resourceCountIs("AWS::Events::EventBus", 1);
    template.resourceCountIs("AWS::Lambda::Function", strataFunctions.length);
    template.resourceCountIs("AWS::StepFunctions::StateMachine", strataWorkflows.length);
    // The rules of infra/event-rules.ts, and no other.
    template.resourceCountIs("AWS::Events::Rule", strataEventRules.length);
    // The schedules of infra/schedules.ts and the health sweep's.
    template.resourceCountIs("AWS::Scheduler::Schedule", strataSchedules.length + 1);
    template.resourceCountIs("AWS::SQS::Queue", 2);
    template.resourceCountIs("AWS::EKS::PodIdentityAssociation", 1);
    template.resourceCountIs("AWS::SNS::Topic", 1);
    // Failed executions per workflow, stale heartbeats, the sweep failing and stopped, two DLQs.
    template.resourceCountIs("AWS::CloudWatch::Alarm", strataWorkflows.length + 1 + 2 + 2);
    // Stale heartbeats: the health sweep's own count of the nodes offline, while they stay offline.
    template.hasResourceProperties("AWS::CloudWatch::Alarm", {
      Namespace: "Strata",
      MetricName: "NodesOffline",
      Dimensions: [{ Name: "service", Value: "health-sweep" }],
      Statistic: "Maximum",
      Threshold: 1,
    });
  });

  it("keeps the state table on demand, recoverable, undeletable, retained, with the key schema core/state uses", () => {
    const definition = stateTableDefinition("unused");
    synthesized.template.hasResource("AWS::DynamoDB::Table", {
      DeletionPolicy: "Retain",
      UpdateReplacePolicy: "Retain",
      Properties: {
        TableName: "strata-state",
        KeySchema: definition.KeySchema,
        AttributeDefinitions: definition.AttributeDefinitions,
        BillingMode: "PAY_PER_REQUEST",
        PointInTimeRecoverySpecification: { PointInTimeRecoveryEnabled: true },
        DeletionProtectionEnabled: true,
        TimeToLiveSpecification: { AttributeName: "expiresAt", Enabled: true },
      },
    });
  });

  it("keeps cloudsnaps versioned, private, encrypted with the rotating key, TLS only, with multipart uploads cleaned up", () => {
    const { template, stack } = synthesized;
    const bucketId = idOf(stack.bucket);
    const keyId = idOf(stack.key);
    template.hasResource("AWS::S3::Bucket", {
      DeletionPolicy: "Retain",
      Properties: {
        VersioningConfiguration: { Status: "Enabled" },
        PublicAccessBlockConfiguration: {
          BlockPublicAcls: true,
          BlockPublicPolicy: true,
          IgnorePublicAcls: true,
          RestrictPublicBuckets: true,
        },
        BucketEncryption: {
          ServerSideEncryptionConfiguration: [
            {
              BucketKeyEnabled: true,
              ServerSideEncryptionByDefault: {
                SSEAlgorithm: "aws:kms",
                KMSMasterKeyID: { "Fn::GetAtt": [keyId, "Arn"] },
              },
            },
          ],
        },
        LifecycleConfiguration: {
          Rules: Match.arrayWith([
            Match.objectLike({
              AbortIncompleteMultipartUpload: { DaysAfterInitiation: 1 },
              Status: "Enabled",
            }),
          ]),
        },
      },
    });
    expect(template.toJSON().Resources[bucketId].Properties.LoggingConfiguration).toBeDefined();
    template.hasResourceProperties("AWS::S3::BucketPolicy", {
      Bucket: { Ref: bucketId },
      PolicyDocument: {
        Statement: Match.arrayWith([
          Match.objectLike({
            Effect: "Deny",
            Action: "s3:*",
            Principal: { AWS: "*" },
            Condition: { Bool: { "aws:SecureTransport": "false" } },
          }),
        ]),
      },
    });
    template.hasResource("AWS::KMS::Key", {
      DeletionPolicy: "Retain",
      Properties: { EnableKeyRotation: true },
    });
    for (const key of Object.values(resources("AWS::KMS::Key")))
      expect(key.Properties.EnableKeyRotation).toBe(true);
  });

  it("encrypts the dead-letter queues and the alarm topic and takes them over TLS only", () => {
    const { template } = synthesized;
    for (const queue of Object.values(resources("AWS::SQS::Queue")))
      expect(queue.Properties.SqsManagedSseEnabled).toBe(true);
    for (const policy of Object.values(resources("AWS::SQS::QueuePolicy")))
      expect(policy.Properties.PolicyDocument.Statement).toContainEqual(
        expect.objectContaining({ Effect: "Deny", Condition: { Bool: { "aws:SecureTransport": "false" } } }),
      );
    template.hasResourceProperties("AWS::SNS::Topic", { KmsMasterKeyId: Match.anyValue() });
    template.hasResourceProperties("AWS::SNS::TopicPolicy", {
      PolicyDocument: {
        Statement: Match.arrayWith([
          Match.objectLike({ Effect: "Deny", Condition: { Bool: { "aws:SecureTransport": "false" } } }),
        ]),
      },
    });
  });
});

describe("the Lambdas", () => {
  it("run every function of the catalog on the newest Node.js runtime, on ARM64, with Powertools and Strata's settings", () => {
    const { stack } = synthesized;
    const functions = resources("AWS::Lambda::Function");
    for (const definition of strataFunctions) {
      const fn = functions[idOf(stack.lambdas.functions.get(definition.name)!)]!.Properties;
      expect(fn.FunctionName).toBe(`strata-${definition.name}`);
      expect(fn.Runtime).toBe(FUNCTION_RUNTIME.name);
      expect(fn.Runtime).toBe("nodejs24.x");
      expect(fn.Architectures).toEqual(["arm64"]);
      expect(fn.Handler).toBe("index.handler");
      expect(fn.Environment.Variables).toMatchObject({
        POWERTOOLS_SERVICE_NAME: definition.name,
        POWERTOOLS_METRICS_NAMESPACE: "Strata",
        POWERTOOLS_LOG_LEVEL: "INFO",
        STRATA_STATE_TABLE: { Ref: idOf(stack.table) },
        STRATA_CLUSTER_NAME: "strata",
        STRATA_EVENT_BUS: { Ref: idOf(stack.eventBus) },
      });
      expect(fn.Timeout).toBeGreaterThanOrEqual(60);
    }
  });

  it("give event intake the state machines it starts, the catalog readers the bucket, the sweep its sweeps per minute", () => {
    const { stack } = synthesized;
    const functions = resources("AWS::Lambda::Function");
    const env = (name: string) =>
      functions[idOf(stack.lambdas.functions.get(name)!)]!.Properties.Environment.Variables;
    expect(env("event-intake")).toMatchObject({
      STRATA_NODE_LOSS_STATE_MACHINE_ARN: { Ref: idOf(stack.stateMachines.get("node-loss")) },
      STRATA_AZ_FAILURE_STATE_MACHINE_ARN: { Ref: idOf(stack.stateMachines.get("az-failure")) },
    });
    for (const reader of ["find-due-cloudsnaps", "apply-retention", "check-restore"])
      expect(env(reader).STRATA_CLOUDSNAP_BUCKET).toEqual({ Ref: idOf(stack.bucket) });
    expect(env("health-sweep").STRATA_SWEEPS_PER_INVOCATION).toBe("12");
    // It sweeps through a whole minute: the timeout leaves room for the last sweep.
    expect(functions[idOf(stack.lambdas.functions.get("health-sweep")!)]!.Properties.Timeout).toBeGreaterThan(
      60,
    );
  });

  it("park the asynchronous invocations that keep failing in an encrypted dead-letter queue", () => {
    const { stack, template } = synthesized;
    const functions = resources("AWS::Lambda::Function");
    for (const [name, queue] of stack.lambdas.deadLetterQueues) {
      const fnId = idOf(stack.lambdas.functions.get(name)!);
      expect(functions[fnId]!.Properties.DeadLetterConfig).toEqual({
        TargetArn: { "Fn::GetAtt": [idOf(queue), "Arn"] },
      });
      template.hasResourceProperties("AWS::Lambda::EventInvokeConfig", {
        FunctionName: { Ref: fnId },
        MaximumRetryAttempts: 2,
      });
    }
    expect([...stack.lambdas.deadLetterQueues.keys()].sort()).toEqual(["event-intake", "health-sweep"]);
  });
});

describe("the state machines", () => {
  it("deploy the very ASL files, every placeholder substituted by the ARN of the function the catalog names", () => {
    const { stack } = synthesized;
    const machines = resources("AWS::StepFunctions::StateMachine");
    for (const workflow of strataWorkflows) {
      const file = readFileSync(join(PROJECT_ROOT, workflow.definitionFile), "utf8");
      const machine = machines[idOf(stack.stateMachines.get(workflow.name))]!.Properties;
      expect(machine.StateMachineName).toBe(`strata-${workflow.name}`);
      expect(machine.StateMachineType).toBe("STANDARD");
      expect(machine.DefinitionString).toBe(file);

      const expected = Object.fromEntries(
        placeholdersIn(file).map((placeholder) => {
          const fn = strataFunctions.find((candidate) => candidate.substitution === placeholder)!;
          return [placeholder, { "Fn::GetAtt": [idOf(stack.lambdas.functions.get(fn.name)!), "Arn"] }];
        }),
      );
      expect(machine.DefinitionSubstitutions).toEqual(expected);
      // CloudFormation's substitution leaves no placeholder behind (as the local cloud checks).
      const names = Object.fromEntries(Object.keys(expected).map((placeholder) => [placeholder, "arn"]));
      expect(() => substitute(JSON.parse(file), names)).not.toThrow();
    }
  });

  it("log every event with its data and trace with X-Ray", () => {
    for (const machine of Object.values(resources("AWS::StepFunctions::StateMachine"))) {
      expect(machine.Properties.LoggingConfiguration).toMatchObject({
        Level: "ALL",
        IncludeExecutionData: true,
      });
      expect(machine.Properties.TracingConfiguration).toEqual({ Enabled: true });
    }
  });

  it("may invoke exactly the functions their file names", () => {
    const { stack, template } = synthesized;
    for (const workflow of strataWorkflows) {
      const machine = stack.stateMachines.get(workflow.name);
      const file = readFileSync(join(PROJECT_ROOT, workflow.definitionFile), "utf8");
      const invoked = statementsOfRole(template, idOf(machine.role)).filter(
        (statement) => statement.Action === "lambda:InvokeFunction",
      );
      const expected = placeholdersIn(file).map((placeholder) => {
        const fn = strataFunctions.find((candidate) => candidate.substitution === placeholder)!;
        return { "Fn::GetAtt": [idOf(stack.lambdas.functions.get(fn.name)!), "Arn"] };
      });
      expect(invoked.flatMap((statement) => asList(statement.Resource))).toEqual(expected);
    }
  });
});

describe("the rules and schedules", () => {
  it("deploy each rule of infra/event-rules.ts with its very pattern, AWS's on the default bus, Strata's on the stack's", () => {
    const { stack } = synthesized;
    const rules = Object.values(resources("AWS::Events::Rule"));
    const intakeArn = { "Fn::GetAtt": [idOf(stack.lambdas.functions.get("event-intake")!), "Arn"] };
    for (const definition of strataEventRules) {
      const rule = rules.find((candidate) => candidate.Properties.Name === `strata-${definition.name}`);
      expect(rule, definition.name).toBeDefined();
      expect(rule!.Properties.EventPattern).toEqual(definition.eventPattern);
      const fromAws = asList(definition.eventPattern["source"]).every((source) =>
        String(source).startsWith("aws."),
      );
      expect(rule!.Properties.EventBusName).toEqual(fromAws ? undefined : { Ref: idOf(stack.eventBus) });
      expect(rule!.Properties.Targets).toEqual([
        expect.objectContaining({
          Arn: intakeArn,
          DeadLetterConfig: {
            Arn: { "Fn::GetAtt": [idOf(stack.lambdas.deadLetterQueues.get("event-intake")!), "Arn"] },
          },
        }),
      ]);
    }
  });

  it("start each workflow of infra/schedules.ts with its input and the health sweep every minute, none in a flexible window", () => {
    const { stack } = synthesized;
    const schedules = Object.values(resources("AWS::Scheduler::Schedule"));
    for (const definition of strataSchedules) {
      const schedule = schedules.find(
        (candidate) => candidate.Properties.Name === `strata-${definition.name}`,
      );
      expect(schedule, definition.name).toBeDefined();
      expect(schedule!.Properties).toMatchObject({
        ScheduleExpression: definition.scheduleExpression,
        FlexibleTimeWindow: { Mode: "OFF" },
        Target: {
          Arn: { Ref: idOf(stack.stateMachines.get(definition.workflow)) },
          Input: JSON.stringify(definition.input),
        },
      });
    }
    const sweep = schedules.find((candidate) => candidate.Properties.Name === "strata-health-sweep");
    expect(sweep!.Properties).toMatchObject({
      ScheduleExpression: "rate(1 minute)",
      FlexibleTimeWindow: { Mode: "OFF" },
      Target: {
        Arn: { "Fn::GetAtt": [idOf(stack.lambdas.functions.get("health-sweep")!), "Arn"] },
        DeadLetterConfig: {
          Arn: { "Fn::GetAtt": [idOf(stack.lambdas.deadLetterQueues.get("health-sweep")!), "Arn"] },
        },
      },
    });
  });

  it("take a schedule's expression from the context when the deployment overrides it", () => {
    const overridden = synthesize({ schedules: '{"cloudsnaps":"rate(5 minutes)"}' });
    overridden.template.hasResourceProperties("AWS::Scheduler::Schedule", {
      Name: "strata-cloudsnaps",
      ScheduleExpression: "rate(5 minutes)",
    });
  });

  it("let Scheduler's roles start only their own target", () => {
    const { template } = synthesized;
    const schedules = Object.values(resources("AWS::Scheduler::Schedule"));
    for (const schedule of schedules) {
      const roleId = schedule.Properties.Target.RoleArn["Fn::GetAtt"][0] as string;
      const role = template.toJSON().Resources[roleId];
      expect(role.Properties.AssumeRolePolicyDocument.Statement).toEqual([
        expect.objectContaining({
          Principal: { Service: "scheduler.amazonaws.com" },
          Action: "sts:AssumeRole",
        }),
      ]);
      const statements = statementsOfRole(template, roleId);
      const starts = statements.filter((statement) => statement.Action !== "sqs:SendMessage");
      expect(starts.flatMap((statement) => asList(statement.Resource))).toEqual([
        schedule.Properties.Target.Arn,
      ]);
    }
  });
});

/**
 * What each function may call, written from its code (handler.ts and the modules it loads): the
 * specification the roles are checked against, stated apart from infra/aws/function-access.ts.
 */
const READ = ["dynamodb:GetItem", "dynamodb:Query"];
const WRITE = [...READ, "dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem"];
const CATALOGS = ["s3:GetObject", "s3:ListBucket", "kms:Decrypt"];
const mayCall: Record<string, string[]> = {
  "event-intake": [
    ...WRITE,
    "ec2:DescribeAvailabilityZones",
    "states:StartExecution",
    "states:DescribeExecution",
    "autoscaling:CompleteLifecycleAction",
    "sqs:SendMessage",
  ],
  "health-sweep": [...WRITE, "events:PutEvents", "sqs:SendMessage"],
  "fence-node": WRITE,
  "find-replacement": [...READ, "ec2:DescribeInstances", "ec2:DescribeVolumes", "eks:DescribeNodegroup"],
  "move-drives": [
    ...WRITE,
    "ec2:DescribeInstances",
    "ec2:DescribeVolumes",
    "ec2:AttachVolume",
    "ec2:DetachVolume",
  ],
  "release-replacement": [...WRITE, "ec2:DescribeVolumes", "ec2:DetachVolume"],
  "complete-lifecycle": ["autoscaling:CompleteLifecycleAction"],
  "check-node": READ,
  "mark-zone": WRITE,
  "plan-operations": READ,
  "start-operation": WRITE,
  "poll-operation": WRITE,
  "report-recovery": ["events:PutEvents"],
  "find-due-cloudsnaps": [...READ, ...CATALOGS],
  "apply-retention": [...READ, ...CATALOGS],
  "check-restore": [...READ, ...CATALOGS],
  "report-cloudsnap": ["events:PutEvents"],
};

/** Actions IAM allows only on `*`: EC2's Describe calls, Step Functions' log delivery and X-Ray. */
const STAR_ONLY = new Set<string>([
  ...DESCRIBE_ONLY_STAR,
  "logs:CreateLogDelivery",
  "logs:GetLogDelivery",
  "logs:UpdateLogDelivery",
  "logs:DeleteLogDelivery",
  "logs:ListLogDeliveries",
  "logs:PutResourcePolicy",
  "logs:DescribeResourcePolicies",
  "logs:DescribeLogGroups",
  "xray:PutTraceSegments",
  "xray:PutTelemetryRecords",
  "xray:GetSamplingRules",
  "xray:GetSamplingTargets",
]);

describe("least privilege", () => {
  const allStatements = (): CfnStatement[] =>
    Object.values(resources("AWS::IAM::Policy")).flatMap(
      (policy) => policy.Properties.PolicyDocument.Statement as CfnStatement[],
    );

  it("gives each function's role exactly what its code calls, and its own log group", () => {
    const { stack, template } = synthesized;
    expect(Object.keys(mayCall).sort()).toEqual(strataFunctions.map((fn) => fn.name).sort());
    for (const definition of strataFunctions) {
      const role = stack.lambdas.roles.get(definition.name)!;
      const statements = statementsOfRole(template, idOf(role));
      const actions = new Set(statements.flatMap((statement) => asList(statement.Action)));
      expect([...actions].sort(), definition.name).toEqual(
        [...mayCall[definition.name]!, "logs:CreateLogStream", "logs:PutLogEvents"].sort(),
      );
      const logs = statements.find((statement) => asList(statement.Action).includes("logs:PutLogEvents"))!;
      expect(logs.Resource).toEqual({
        "Fn::GetAtt": [
          idOf(stack.node.findChild("Functions").node.findChild(`${definition.name}-logs`)),
          "Arn",
        ],
      });
    }
  });

  it("uses `*` only for the actions IAM allows nowhere else, and names every action", () => {
    for (const statement of allStatements()) {
      expect(statement.Effect).toBe("Allow");
      const actions = asList(statement.Action);
      for (const action of actions) expect(action, "a wildcard action").not.toContain("*");
      if (asList(statement.Resource).includes("*"))
        for (const action of actions) expect(STAR_ONLY, `${action} on *`).toContain(action);
    }
  });

  it("attaches and detaches only the cluster's drives, on the instances of its node groups", () => {
    const moves = allStatements().filter((statement) =>
      asList(statement.Action).some(
        (action) => action === "ec2:AttachVolume" || action === "ec2:DetachVolume",
      ),
    );
    // move-drives and release-replacement: one statement for the volumes, one for the instances.
    expect(moves).toHaveLength(4);
    for (const statement of moves) {
      const resource = JSON.stringify(statement.Resource);
      if (resource.includes(":volume/*"))
        expect(statement.Condition).toEqual({ StringEquals: { "aws:ResourceTag/strata:cluster": "strata" } });
      else {
        expect(resource).toContain(":instance/*");
        expect(statement.Condition).toEqual({
          StringEquals: {
            "aws:ResourceTag/eks:cluster-name": "strata",
            "aws:ResourceTag/eks:nodegroup-name": ["strata-nodes"],
          },
        });
      }
    }
  });

  it("completes lifecycle actions and describes node groups of the cluster's node groups only", () => {
    const statements = allStatements();
    for (const statement of statements.filter((s) =>
      asList(s.Action).includes("autoscaling:CompleteLifecycleAction"),
    )) {
      expect(JSON.stringify(statement.Resource)).toContain(":autoScalingGroupName/eks-strata-nodes-*");
      expect(statement.Condition).toEqual({
        StringEquals: {
          "aws:ResourceTag/eks:cluster-name": "strata",
          "aws:ResourceTag/eks:nodegroup-name": ["strata-nodes"],
        },
      });
    }
    const describe = statements.filter((s) => asList(s.Action).includes("eks:DescribeNodegroup"));
    expect(describe).toHaveLength(1);
    expect(JSON.stringify(describe[0]!.Resource)).toContain(":nodegroup/strata/strata-nodes/*");
  });

  it("narrows attach and detach to the deployment's zones when it names them", () => {
    const zoned = synthesize({ zones: "eu-west-1a,eu-west-1b", nodeGroups: '["ng-a","ng-b"]' });
    const moves = Object.values(zoned.template.findResources("AWS::IAM::Policy"))
      .flatMap((policy) => policy.Properties.PolicyDocument.Statement as CfnStatement[])
      .filter((statement) => asList(statement.Action).includes("ec2:DetachVolume"));
    expect(moves.length).toBeGreaterThan(0);
    for (const statement of moves)
      expect(statement.Condition!["StringEquals"]!["ec2:AvailabilityZone"]).toEqual([
        "eu-west-1a",
        "eu-west-1b",
      ]);
    const instances = moves.find((statement) => JSON.stringify(statement.Resource).includes(":instance/*"))!;
    expect(instances.Condition!["StringEquals"]!["aws:ResourceTag/eks:nodegroup-name"]).toEqual([
      "ng-a",
      "ng-b",
    ]);
  });
});

describe("the agent pods' role", () => {
  it("is taken through EKS Pod Identity by strata-system/strata-agent of the cluster only", () => {
    const { stack, template } = synthesized;
    const roleId = idOf(stack.node.findChild("Agent").node.findChild("Role"));
    template.hasResourceProperties("AWS::IAM::Role", {
      AssumeRolePolicyDocument: {
        Statement: [
          {
            Effect: "Allow",
            Principal: { Service: "pods.eks.amazonaws.com" },
            Action: ["sts:AssumeRole", "sts:TagSession"],
            Condition: {
              StringEquals: {
                "aws:SourceAccount": { Ref: "AWS::AccountId" },
                "aws:RequestTag/eks-cluster-name": "strata",
                "aws:RequestTag/kubernetes-namespace": "strata-system",
                "aws:RequestTag/kubernetes-service-account": "strata-agent",
              },
            },
          },
        ],
      },
    });
    template.hasResourceProperties("AWS::EKS::PodIdentityAssociation", {
      ClusterName: "strata",
      Namespace: "strata-system",
      ServiceAccount: "strata-agent",
      RoleArn: { "Fn::GetAtt": [roleId, "Arn"] },
    });
  });

  it("reaches the table, the bucket's volumes, the key and the cluster's drives' tags, and attaches nothing", () => {
    const { stack, template } = synthesized;
    const statements = statementsOfRole(template, idOf(stack.node.findChild("Agent").node.findChild("Role")));
    const byAction = (action: string) => statements.filter((s) => asList(s.Action).includes(action));
    const actions = statements.flatMap((statement) => asList(statement.Action));
    expect(actions).not.toContain("ec2:AttachVolume");
    expect(actions).not.toContain("ec2:DetachVolume");
    expect(byAction("dynamodb:PutItem")[0]!.Resource).toEqual({ "Fn::GetAtt": [idOf(stack.table), "Arn"] });
    expect(byAction("s3:PutObject")[0]!.Resource).toEqual({
      "Fn::Join": ["", [{ "Fn::GetAtt": [idOf(stack.bucket), "Arn"] }, "/volumes/*"]],
    });
    // The agent puts no events: the workflows and the sweep do.
    expect(actions).not.toContain("events:PutEvents");
    const keyArn = { "Fn::GetAtt": [idOf(stack.key), "Arn"] };
    for (const action of ["kms:Encrypt", "kms:GenerateDataKey"])
      expect(byAction(action)[0]!.Resource, action).toEqual(keyArn);
    // The context agent/cloudsnap/kms-protector.ts wraps each data key under, and nothing else.
    expect(byAction("kms:Encrypt")[0]!.Condition).toEqual({
      StringEquals: { "kms:EncryptionContext:strata:purpose": "cloudsnap-data-key" },
      Null: { "kms:EncryptionContext:strata:volume": "false" },
      "ForAllValues:StringEquals": { "kms:EncryptionContextKeys": ["strata:volume", "strata:purpose"] },
    });
    expect(actions).not.toContain("kms:DescribeKey");
    expect(byAction("ec2:DescribeVolumes")[0]!.Resource).toBe("*");
    expect(byAction("ec2:CreateTags")[0]!.Condition).toEqual({
      StringEquals: { "aws:ResourceTag/strata:cluster": "strata" },
      "ForAllValues:StringEquals": { "aws:TagKeys": ["strata:drive-set"] },
    });
  });
});

describe("cdk-nag", () => {
  it("finds nothing unacknowledged in the AwsSolutions checks", () => {
    const report = new AwsSolutionsChecks().validateScope(synthesized.app);
    expect(
      report.violations.map(
        (violation) =>
          `${violation.severity} ${violation.ruleName}: ${violation.violatingResources.map((r) => r.constructPath).join(", ")}`,
      ),
    ).toEqual([]);
  });

  it("acknowledges each finding with a reason of its own, written into the template", () => {
    const reasons = new Map<string, string>();
    for (const construct of synthesized.app.node.findAll())
      for (const entry of construct.node.metadata)
        if (entry.type === Validations.ACKNOWLEDGED_RULES_METADATA_KEY)
          for (const [id, reason] of Object.entries(entry.data as Record<string, string>))
            reasons.set(`${construct.node.path} ${id}`, reason);
    expect(reasons.size).toBeGreaterThan(0);
    for (const [where, reason] of reasons) {
      expect(reason.length, where).toBeGreaterThan(60);
      expect(where).toMatch(/AwsSolutions-(IAM5\[Resource::.+\]|SQS3|S1)$/);
    }
    const written = Object.values(
      synthesized.template.toJSON().Resources as Record<
        string,
        { Metadata?: { cdk_nag?: { rules_to_suppress: { id: string; reason: string }[] } } }
      >,
    ).flatMap((resource) => resource.Metadata?.cdk_nag?.rules_to_suppress ?? []);
    expect(written.length).toBeGreaterThan(0);
    for (const rule of written) expect(rule.reason.length, rule.id).toBeGreaterThan(60);
  });
});
