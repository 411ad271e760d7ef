import { Stack } from "aws-cdk-lib";
import { PolicyStatement, Role, ServicePrincipal } from "aws-cdk-lib/aws-iam";
import { describe, expect, it } from "vitest";
import { allow } from "../../infra/aws/reasoned-statements.js";
import { deploymentSettings } from "../../infra/aws/settings.js";
import { cdkJsonContext } from "./support.js";

const withContext =
  (overrides: Record<string, unknown>) =>
  (key: string): unknown =>
    ({ ...cdkJsonContext(), ...overrides })[key];

describe("the deployment's settings from the CDK context", () => {
  it("takes cdk.json's defaults as they are", () => {
    expect(deploymentSettings(withContext({}))).toEqual({
      clusterName: "strata",
      nodeGroups: ["strata-nodes"],
      zones: [],
      prefix: "strata",
      schedules: {},
      logLevel: "INFO",
      sweepsPerMinute: 12,
    });
  });

  it("reads lists and schedules given on the command line, as JSON or comma-separated", () => {
    const settings = deploymentSettings(
      withContext({
        clusterName: "prod-eu",
        nodeGroups: "storage-a, storage-b",
        zones: '["eu-west-1a","eu-west-1b"]',
        schedules: '{"cloudsnaps":"rate(5 minutes)"}',
        bucketName: "prod-eu-cloudsnaps",
        alarmEmail: "storage@example.com",
        sweepsPerMinute: "1",
      }),
    );
    expect(settings).toMatchObject({
      clusterName: "prod-eu",
      nodeGroups: ["storage-a", "storage-b"],
      zones: ["eu-west-1a", "eu-west-1b"],
      schedules: { cloudsnaps: "rate(5 minutes)" },
      bucketName: "prod-eu-cloudsnaps",
      alarmEmail: "storage@example.com",
      sweepsPerMinute: 1,
    });
  });

  it("treats an empty value as not given", () => {
    expect(deploymentSettings(withContext({ bucketName: "" })).bucketName).toBeUndefined();
  });

  it.each([
    [{ nodeGroups: "" }, /nodeGroups: at least one node group \(got ""\)/],
    [{ clusterName: "-bad" }, /clusterName: an EKS cluster name/],
    [{ zones: "eu-west-1" }, /zones\.0: an availability zone name such as eu-west-1a \(got "eu-west-1"\)/],
    [
      { schedules: { snapshots: "rate(1 hour)" } },
      /schedules\.snapshots: a schedule of infra\/schedules\.ts \(cloudsnaps\)/,
    ],
    [
      { schedules: '{"cloudsnaps":"every minute"}' },
      /schedules\.cloudsnaps: rate\(N minutes\), cron\(\.\.\.\) or at\(\.\.\.\)/,
    ],
    [{ bucketName: "Cloudsnaps" }, /bucketName: an S3 bucket name/],
    [{ alarmEmail: "storage" }, /alarmEmail: an email address/],
    [{ prefix: "Strata_prod" }, /prefix: lower-case letters, digits and hyphens/],
    [{ logLevel: "TRACE" }, /logLevel: /],
    [{ sweepsPerMinute: "61" }, /sweepsPerMinute: .* \(got "61"\)/],
  ])("refuses %j, naming the key and what it should be", (overrides, message) => {
    expect(() => deploymentSettings(withContext(overrides))).toThrow(message);
  });
});

describe("a statement with a wildcard resource", () => {
  it("is refused without the reason cdk-nag's acknowledgment needs", () => {
    const stack = new Stack();
    const role = new Role(stack, "Role", { assumedBy: new ServicePrincipal("lambda.amazonaws.com") });
    const statement = new PolicyStatement({
      actions: ["s3:GetObject"],
      resources: ["arn:aws:s3:::bucket/*"],
    });

    expect(() => allow(role, role, [{ statement }])).toThrow(
      "Default/Role: the statement for s3:GetObject has the wildcard resource arn:aws:s3:::bucket/* and no reason for it",
    );
  });
});
