import {
  DescribeExecutionCommand,
  type DescribeExecutionOutput,
  SFNClient,
  StartExecutionCommand,
} from "@aws-sdk/client-sfn";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Cloudsnap } from "../../core/cloudsnaps.js";
import type { Volume } from "../../core/model.js";
import { LOCAL_ACCOUNT_ID, localRegion } from "../../infra/local/aws/identity.js";
import { workflowMachine } from "../../infra/local/cloud-names.js";
import { stateMachineArn } from "../../infra/local/step-functions/arns.js";
import {
  clusterCli,
  clusterUp,
  oneSentence,
  prepareClusterDir,
  type RunningCluster,
  tearDownCluster,
} from "../cli/strata-process.js";
import { eventually } from "../support/eventually.js";
import { run } from "../support/run.js";
import { replicaDigests } from "./replica-digests.js";

/**
 * Scheduled cloudsnaps and the restore workflow on a real local cluster: the cloudsnap workflow
 * runs from its timer (every 3 s here instead of every minute), real agents upload, and the
 * restore workflow is started as an operator would, through the cluster's Step Functions endpoint.
 */

const MiB = 1024 * 1024;
let dir: string;
let cluster: RunningCluster | undefined;
const strata = clusterCli(() => dir);

beforeAll(async () => {
  dir = await prepareClusterDir("strata-cs-auto-");
  process.env.STRATA_SCHEDULE_MS = "3000";
  cluster = await clusterUp(dir, ["--nodes", "2", "--zones", "2"]);
}, 180_000);

afterAll(async () => {
  delete process.env.STRATA_SCHEDULE_MS;
  await tearDownCluster(dir, cluster);
}, 60_000);

const cloudsnapsOf = async (volume: string) =>
  (await strata.json<{ cloudsnaps: Cloudsnap[] }>("cloudsnap", "list", volume)).cloudsnaps;

describe("scheduled cloudsnaps", () => {
  let digest: string;
  let kept: Cloudsnap;

  it("refuses an impossible policy in one sentence naming the field", async () => {
    const refused = await strata.cli("policy", "create", "bad", "--daily", "25:00", "--daily-retain", "2");
    expect(refused.code).toBe(2);
    expect(oneSentence(refused)).toBe(
      'invalid schedule policy: schedules.daily.time must be a UTC time "HH:MM" from 00:00 to 23:59',
    );
    const none = await strata.cli("policy", "create", "empty");
    expect(oneSentence(none)).toContain("a policy needs at least one schedule");
  });

  it("volumes following an interval policy in a group get cloudsnaps together by themselves, and retention keeps `retain` of them and every manual one", async () => {
    await strata.json("policy", "create", "every-minute", "--interval", "1", "--retain", "1");
    const policies = await strata.cli("policy", "list");
    expect(policies.stdout).toMatch(/every-minute\s+interval\s+-/);

    const volume = await strata.json<Volume>("volume", "create", "orders", "--size", "16MiB");
    await strata.json<Volume>("volume", "create", "orders-log", "--size", "16MiB");
    const { nbdUri } = await strata.json<{ nbdUri: string }>("volume", "attach", "orders");
    await strata.json("volume", "attach", "orders-log");
    await run("qemu-io", ["-f", "raw", nbdUri, "-c", `write -P 0x5a 0 ${3 * MiB}`]);
    digest = [...new Set((await replicaDigests(dir, cluster!.file, volume)).values())][0]!;
    const manual = await strata.json<Cloudsnap>("cloudsnap", "create", "orders", "--wait");
    for (const name of ["orders", "orders-log"]) {
      await strata.json("volume", "policy", name, "every-minute", "--group", "books");
    }
    const scheduledOf = async (name: string) =>
      (await cloudsnapsOf(name)).filter((cloudsnap) => cloudsnap.schedule === "interval");

    // The first scheduled ones come with the next run; the second with the next minute's slot,
    // after which retention (retain 1) deletes the first of each volume.
    let first: Cloudsnap | undefined;
    await eventually(
      async () => {
        first = (await scheduledOf("orders"))[0];
        return first !== undefined;
      },
      "a scheduled cloudsnap",
      30_000,
    );
    await eventually(
      async () => {
        const [orders, log] = [await scheduledOf("orders"), await scheduledOf("orders-log")];
        return orders.length === 1 && orders[0]!.id !== first!.id && log.length === 1;
      },
      "the next minute's cloudsnaps, and the first ones deleted",
      100_000,
    );
    const listed = await cloudsnapsOf("orders");
    expect(listed[0]!.id).toBe(manual.id);
    expect(listed.map((cloudsnap) => cloudsnap.schedule ?? "manual")).toEqual(["manual", "interval"]);
    kept = listed[1]!;
    // Taken together: one group tag for both volumes' cloudsnaps of the slot, by one operation.
    const [log] = await scheduledOf("orders-log");
    expect(kept.group).toMatch(/^books@/);
    expect(log!.group).toBe(kept.group);
    // The slot's one operation took both (the first run may have found "orders" alone: it was
    // assigned first).
    const operations = (
      await strata.json<{
        operations: { kind: string; params: { with?: string[] }; result?: { cloudsnap?: string } }[];
      }>("operation", "list", "--volume", "orders")
    ).operations;
    const upload = operations.find(
      (operation) => operation.kind === "cloudsnap" && operation.result?.cloudsnap === kept.id,
    );
    expect(upload?.params.with).toEqual(["orders-log"]);
    // Its Completed event names both volumes' cloudsnaps.
    const events = (await strata.cli("events", "--json")).stdout
      .split("\n")
      .filter((line) => line !== "")
      .map((line) => JSON.parse(line) as { "detail-type": string; detail: { cloudsnaps?: string[] } });
    expect(events).toContainEqual(
      expect.objectContaining({
        "detail-type": "Strata Cloudsnap Completed",
        detail: expect.objectContaining({ cloudsnaps: [kept.id, log!.id] }),
      }),
    );

    const assigned = await strata.cli("policy", "delete", "every-minute");
    expect(assigned.code).toBe(1);
    expect(oneSentence(assigned)).toContain('policy "every-minute" is assigned to volume(s)');
    for (const name of ["orders", "orders-log"]) await strata.json("volume", "policy", name, "--none");
    await strata.json("policy", "delete", "every-minute");
  }, 150_000);

  it("the restore workflow, started through the Step Functions endpoint, restores it byte for byte", async () => {
    const endpoint = cluster!.file.cloud?.endpoints["AWS_ENDPOINT_URL_SFN"];
    expect(endpoint).toBeDefined();
    const sfn = new SFNClient({
      endpoint: endpoint!,
      region: localRegion(),
      credentials: { accessKeyId: "local", secretAccessKey: "local" },
    });
    try {
      const { executionArn } = await sfn.send(
        new StartExecutionCommand({
          stateMachineArn: stateMachineArn(
            { region: localRegion(), account: LOCAL_ACCOUNT_ID },
            workflowMachine("restore"),
          ),
          name: "restore-orders",
          input: JSON.stringify({ cloudsnap: kept.id, volume: "orders-restored", replicationFactor: 2 }),
        }),
      );
      let execution: DescribeExecutionOutput | undefined;
      await eventually(
        async () => {
          execution = await sfn.send(new DescribeExecutionCommand({ executionArn }));
          return execution.status !== "RUNNING";
        },
        "the restore workflow to end",
        90_000,
      );
      expect(execution?.status).toBe("SUCCEEDED");
    } finally {
      sfn.destroy();
    }
    const restored = await strata.json<Volume>("volume", "inspect", "orders-restored");
    expect(restored.replicas).toHaveLength(2);
    const digests = new Set((await replicaDigests(dir, cluster!.file, restored)).values());
    expect([...digests]).toEqual([digest]);
  }, 120_000);
});
