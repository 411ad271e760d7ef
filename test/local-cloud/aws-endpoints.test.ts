import {
  DescribeNodegroupCommand,
  EKSClient,
  ListNodegroupsCommand,
  paginateListNodegroups,
} from "@aws-sdk/client-eks";
import { EventBridgeClient, PutEventsCommand, type PutEventsRequestEntry } from "@aws-sdk/client-eventbridge";
import {
  DescribeExecutionCommand,
  GetExecutionHistoryCommand,
  ListExecutionsCommand,
  paginateListExecutions,
  SFNClient,
  StartExecutionCommand,
  StopExecutionCommand,
} from "@aws-sdk/client-sfn";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { LOCAL_ACCOUNT_ID } from "../../infra/local/aws/identity.js";
import {
  CLIENT_CONFIG,
  type LocalCloud,
  refusal,
  STATE_MACHINE_ARN,
  startLocalCloud,
  ZONES,
} from "./aws-harness.js";

let cloud: LocalCloud;
let sfn: SFNClient;
let events: EventBridgeClient;
let eks: EKSClient;

beforeAll(async () => {
  cloud = await startLocalCloud();
  // Constructed after the variables are set and given no endpoint: the variables are the only route.
  sfn = new SFNClient(CLIENT_CONFIG);
  events = new EventBridgeClient(CLIENT_CONFIG);
  eks = new EKSClient(CLIENT_CONFIG);
});

afterAll(async () => {
  for (const client of [sfn, events, eks]) client?.destroy();
  await cloud?.close();
});

describe("the endpoint variables", () => {
  it("name one loopback endpoint per service, as the SDK clients read them", () => {
    const variables = cloud.endpoints.environment;
    expect(Object.keys(variables).sort()).toEqual([
      "AWS_ENDPOINT_URL_AUTO_SCALING",
      "AWS_ENDPOINT_URL_EC2",
      "AWS_ENDPOINT_URL_EKS",
      "AWS_ENDPOINT_URL_EVENTBRIDGE",
      "AWS_ENDPOINT_URL_KMS",
      "AWS_ENDPOINT_URL_SFN",
    ]);
    const urls = Object.values(variables);
    for (const url of urls) expect(url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    expect(new Set(urls).size).toBe(urls.length);
  });

  it("are where a client without an endpoint sends its requests", async () => {
    const client = new SFNClient(CLIENT_CONFIG);
    const sentTo: string[] = [];
    client.middlewareStack.add(
      (next) => async (args) => {
        const { protocol, hostname, port } = args.request as {
          protocol: string;
          hostname: string;
          port: number;
        };
        sentTo.push(`${protocol}//${hostname}:${port}`);
        return next(args);
      },
      { step: "finalizeRequest" },
    );
    await client.send(new ListExecutionsCommand({ stateMachineArn: STATE_MACHINE_ARN }));
    client.destroy();
    expect(sentTo).toEqual([cloud.endpoints.environment["AWS_ENDPOINT_URL_SFN"]]);
  });
});

describe("Step Functions (AWS JSON 1.0)", () => {
  it("starts, describes, lists, reads the history of and stops executions", async () => {
    const started = await sfn.send(
      new StartExecutionCommand({
        stateMachineArn: STATE_MACHINE_ARN,
        name: "node-loss-1",
        input: '{"node":"n1"}',
      }),
    );
    expect(started.executionArn).toBe(
      `arn:aws:states:local:${LOCAL_ACCOUNT_ID}:execution:node-loss:node-loss-1`,
    );
    expect(started.startDate).toBeInstanceOf(Date);
    const expectedStart = cloud.stepFunctions.executions.get(started.executionArn!)!.startDate!;
    expect(started.startDate?.getTime()).toBe(expectedStart.getTime());

    const described = await sfn.send(new DescribeExecutionCommand({ executionArn: started.executionArn }));
    expect(described).toMatchObject({ name: "node-loss-1", status: "RUNNING", input: '{"node":"n1"}' });
    expect(described.startDate?.getTime()).toBe(expectedStart.getTime());

    const stopped = await sfn.send(
      new StopExecutionCommand({ executionArn: started.executionArn, cause: "test" }),
    );
    expect(stopped.stopDate).toBeInstanceOf(Date);
    const history = await sfn.send(new GetExecutionHistoryCommand({ executionArn: started.executionArn }));
    expect(history.events?.map((e) => e.type)).toEqual(["ExecutionStarted", "ExecutionAborted"]);
    expect(history.events?.[0]?.timestamp?.getTime()).toBe(expectedStart.getTime());
  });

  it("pages through executions with nextToken", async () => {
    for (const name of ["page-1", "page-2", "page-3"])
      await sfn.send(new StartExecutionCommand({ stateMachineArn: STATE_MACHINE_ARN, name }));
    const first = await sfn.send(
      new ListExecutionsCommand({ stateMachineArn: STATE_MACHINE_ARN, maxResults: 2 }),
    );
    expect(first.executions).toHaveLength(2);
    expect(first.nextToken).toBeDefined();
    const names: string[] = [];
    for await (const page of paginateListExecutions(
      { client: sfn, pageSize: 2 },
      { stateMachineArn: STATE_MACHINE_ARN },
    ))
      names.push(...(page.executions ?? []).map((e) => e.name!));
    expect(names).toEqual(["node-loss-1", "page-1", "page-2", "page-3"]);
  });

  it("turns the runner's refusals into the SDK's named exceptions", async () => {
    const missing = await refusal(
      sfn.send(new DescribeExecutionCommand({ executionArn: `${STATE_MACHINE_ARN}:nope` })),
    );
    expect(missing.name).toBe("ExecutionDoesNotExist");
    expect(missing.message).toContain("Execution Does Not Exist");
    expect((missing.$metadata as { httpStatusCode: number }).httpStatusCode).toBe(400);

    const again = await refusal(
      sfn.send(new StartExecutionCommand({ stateMachineArn: STATE_MACHINE_ARN, name: "node-loss-1" })),
    );
    expect(again.name).toBe("ExecutionAlreadyExists");
    const badArn = await refusal(sfn.send(new StartExecutionCommand({ stateMachineArn: "nope" })));
    expect(badArn.name).toBe("InvalidArn");
  });

  it("refuses an operation it does not serve in the protocol's error shape", async () => {
    const response = await fetch(cloud.endpoints.environment["AWS_ENDPOINT_URL_SFN"]!, {
      method: "POST",
      headers: {
        "content-type": "application/x-amz-json-1.0",
        "x-amz-target": "AWSStepFunctions.DeleteStateMachine",
      },
      body: "{}",
    });
    expect(response.status).toBe(400);
    expect(await response.json()).toMatchObject({ __type: "UnknownOperationException" });
  });
});

describe("EventBridge PutEvents (AWS JSON 1.1)", () => {
  const entry = (overrides: Partial<PutEventsRequestEntry> = {}): PutEventsRequestEntry => ({
    Source: "strata.workflows",
    DetailType: "Volume Re-replicated",
    Detail: JSON.stringify({ volumeId: "v1" }),
    Resources: ["arn:strata:volume/v1"],
    ...overrides,
  });

  it("hands the bus checked entries and answers their event ids", async () => {
    const before = cloud.eventBus.received.length;
    const time = new Date("2026-01-02T03:04:05Z");
    const result = await events.send(new PutEventsCommand({ Entries: [entry({ Time: time }), entry()] }));
    expect(result.FailedEntryCount).toBe(0);
    expect(result.Entries).toHaveLength(2);
    for (const e of result.Entries ?? []) expect(e.EventId).toMatch(/^[0-9a-f-]{36}$/);
    const [first, second] = cloud.eventBus.received.slice(before);
    expect(first).toEqual({
      source: "strata.workflows",
      detailType: "Volume Re-replicated",
      detail: { volumeId: "v1" },
      resources: ["arn:strata:volume/v1"],
      time,
    });
    expect(second?.time).toBeUndefined();
  });

  it("fails each invalid entry alone, with EventBridge's per-entry codes, and puts the rest", async () => {
    const before = cloud.eventBus.received.length;
    const result = await events.send(
      new PutEventsCommand({
        Entries: [
          entry({ Source: undefined }),
          entry(),
          entry({ Detail: "not json" }),
          entry({ Detail: "[1, 2]" }),
          entry({ DetailType: undefined }),
          entry({ Detail: undefined }),
          entry({ EventBusName: "elsewhere" }),
        ],
      }),
    );
    expect(result.FailedEntryCount).toBe(6);
    expect(result.Entries?.map((e) => e.ErrorCode ?? "ok")).toEqual([
      "InvalidArgument",
      "ok",
      "MalformedDetail",
      "MalformedDetail",
      "InvalidArgument",
      "InvalidArgument",
      "InvalidArgument",
    ]);
    expect(result.Entries?.[0]?.ErrorMessage).toContain("Source");
    expect(result.Entries?.[1]?.EventId).toBeDefined();
    expect(cloud.eventBus.received.length).toBe(before + 1);
  });

  it("refuses more than 10 entries, or over 256 KB of them, as a whole", async () => {
    const many = await refusal(
      events.send(new PutEventsCommand({ Entries: Array.from({ length: 11 }, () => entry()) })),
    );
    expect(many.name).toBe("ValidationException");
    const big = JSON.stringify({ blob: "x".repeat(100 * 1024) });
    const large = await refusal(
      events.send(new PutEventsCommand({ Entries: [1, 2, 3].map(() => entry({ Detail: big })) })),
    );
    expect(large.name).toBe("ValidationException");
    expect(large.message).toContain("over the limit");
    const fits = await events.send(
      new PutEventsCommand({ Entries: [entry({ Detail: big }), entry({ Detail: big })] }),
    );
    expect(fits.FailedEntryCount).toBe(0);
  });
});

describe("EKS node groups (REST JSON)", () => {
  it("lists the cluster's node groups a page at a time", async () => {
    const first = await eks.send(new ListNodegroupsCommand({ clusterName: "strata-test", maxResults: 2 }));
    expect(first.nodegroups).toEqual(["strata-test-local-a", "strata-test-local-b"]);
    expect(first.nextToken).toBeDefined();
    const all: string[] = [];
    for await (const page of paginateListNodegroups(
      { client: eks, pageSize: 2 },
      { clusterName: "strata-test" },
    ))
      all.push(...(page.nodegroups ?? []));
    expect(all).toEqual(ZONES.map((zone) => `strata-test-${zone}`));
  });

  it("describes a node group with its Auto Scaling group and size", async () => {
    cloud.world.launchInstance({ nodegroup: "strata-test-local-b" });
    const { nodegroup } = await eks.send(
      new DescribeNodegroupCommand({ clusterName: "strata-test", nodegroupName: "strata-test-local-b" }),
    );
    expect(nodegroup).toMatchObject({
      nodegroupName: "strata-test-local-b",
      clusterName: "strata-test",
      status: "ACTIVE",
      scalingConfig: { minSize: 0, maxSize: 10, desiredSize: 1 },
      resources: { autoScalingGroups: [{ name: "eks-strata-test-local-b" }] },
      labels: { "topology.kubernetes.io/zone": "local-b" },
      subnets: ["subnet-local-b"],
    });
    expect(nodegroup?.nodegroupArn).toMatch(
      new RegExp(`^arn:aws:eks:local:${LOCAL_ACCOUNT_ID}:nodegroup/strata-test/strata-test-local-b/`),
    );
    expect(nodegroup?.createdAt).toBeInstanceOf(Date);
    expect(Math.abs(nodegroup!.createdAt!.getTime() - Date.now())).toBeLessThan(60_000);
  });

  it("refuses an unknown node group or cluster with ResourceNotFoundException (404)", async () => {
    const group = await refusal(
      eks.send(new DescribeNodegroupCommand({ clusterName: "strata-test", nodegroupName: "nope" })),
    );
    expect(group.name).toBe("ResourceNotFoundException");
    expect(group.message).toBe("No node group found for name: nope.");
    expect(group["nodegroupName"]).toBe("nope");
    expect((group.$metadata as { httpStatusCode: number }).httpStatusCode).toBe(404);
    const cluster = await refusal(eks.send(new ListNodegroupsCommand({ clusterName: "other" })));
    expect(cluster.name).toBe("ResourceNotFoundException");
    const badPage = await refusal(
      eks.send(new ListNodegroupsCommand({ clusterName: "strata-test", maxResults: 0 })),
    );
    expect(badPage.name).toBe("InvalidParameterException");
  });
});
