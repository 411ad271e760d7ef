import { EC2Client } from "@aws-sdk/client-ec2";
import { EKSClient } from "@aws-sdk/client-eks";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { DriveTag } from "../../core/drive-sets.js";
import { claimReplacement } from "../../core/state/replacement-claims.js";
import { type FindReplacementInput, findReplacement } from "../../functions/find-replacement/find.js";
import { GiB } from "../core/fixtures.js";
import { storePerSuite } from "../core/state-harness.js";
import { CLIENT_CONFIG, type LocalCloud, startLocalCloud } from "../local-cloud/aws-harness.js";
import { CLUSTER, NOW } from "./support.js";

/** One node group per test, all in local-a, so no test finds another's instances. */
const GROUPS = [
  "found",
  "shared-name",
  "holding",
  "claimed",
  "expected",
  "hooked",
  "waited",
  "full",
  "other",
  "crashed",
  "scaled",
];

let cloud: LocalCloud;
let ec2: EC2Client;
let eks: EKSClient;
/** Where move-drives claims replacements: a real table. */
const suite = storePerSuite();

beforeAll(async () => {
  cloud = await startLocalCloud({
    clusterName: CLUSTER,
    nodegroups: [...GROUPS.map((name) => ({ zone: "local-a", name })), { zone: "local-b", name: "in-b" }],
  });
  ec2 = new EC2Client(CLIENT_CONFIG);
  eks = new EKSClient(CLIENT_CONFIG);
});

afterAll(async () => {
  ec2?.destroy();
  eks?.destroy();
  await cloud?.close();
});

afterEach(() => {
  delete process.env["STRATA_REPLACEMENT_WAIT_MS"];
});

const find = (instanceId: string | null, overrides: Partial<FindReplacementInput> = {}) =>
  findReplacement(
    {
      nodeId: "node-1",
      zone: "local-a",
      instanceId,
      lifecycle: null,
      detectedAt: NOW.toISOString(),
      ...overrides,
    },
    { ec2, eks, leases: suite.store.leases, clock: () => NOW },
  );

/** An instance of `nodegroup` serving some node: a drive of a drive set is attached to it. */
function servingInstance(nodegroup: string) {
  const instance = cloud.world.launchInstance({ nodegroup });
  cloud.world.createVolume({
    zone: instance.zone,
    sizeBytes: GiB,
    tags: { [DriveTag.cluster]: CLUSTER, [DriveTag.driveSet]: `node-on-${instance.id}` },
    attachTo: { instanceId: instance.id },
  });
  return instance;
}

describe("finding the replacement of a lost instance", () => {
  it("finds a running instance of the lost one's node group and zone that holds no drive set", async () => {
    const lost = cloud.world.launchInstance({ nodegroup: "found" });
    cloud.world.terminateInstance(lost.id);
    cloud.world.launchInstance({ nodegroup: "other" });
    const fresh = cloud.world.launchInstance({ nodegroup: "found" });

    expect(await find(lost.id)).toEqual({
      status: "found",
      instanceId: fresh.id,
      detail: expect.stringContaining(`${fresh.id} in local-a (node group found)`),
    });
  });

  it("passes over an instance of another cluster's node group of the same name", async () => {
    const lost = cloud.world.launchInstance({ nodegroup: "shared-name" });
    cloud.world.terminateInstance(lost.id);
    const foreign = cloud.world.launchInstance({
      zone: "local-a",
      tags: { "eks:cluster-name": "another-cluster", "eks:nodegroup-name": "shared-name" },
    });

    const answer = await find(lost.id);

    expect(answer.instanceId).not.toBe(foreign.id);
    expect(answer.status).toBe("none");
  });

  it("passes over an instance that serves another node's drive set", async () => {
    const lost = cloud.world.launchInstance({ nodegroup: "holding" });
    cloud.world.terminateInstance(lost.id);
    servingInstance("holding");
    const fresh = cloud.world.launchInstance({ nodegroup: "holding" });

    expect(await find(lost.id)).toMatchObject({ status: "found", instanceId: fresh.id });
  });

  it("passes over an instance another lost node's recovery claimed, and finds the one this node claimed", async () => {
    const lost = cloud.world.launchInstance({ nodegroup: "claimed" });
    cloud.world.terminateInstance(lost.id);
    const first = cloud.world.launchInstance({ nodegroup: "claimed" });
    const second = cloud.world.launchInstance({ nodegroup: "claimed" });
    await claimReplacement(suite.store.leases, first.id, "node-2");

    expect(await find(lost.id)).toMatchObject({ status: "found", instanceId: second.id });
    await claimReplacement(suite.store.leases, second.id, "node-1");
    expect(await find(lost.id)).toMatchObject({ status: "found", instanceId: second.id });
    // Both taken for others: none is found for node-3.
    expect((await find(lost.id, { nodeId: "node-3" })).instanceId).toBeNull();
  });

  it("expects one when the node group wants more instances than it has", async () => {
    // A stopped instance still counts in its group's size: the group will replace it.
    const lost = cloud.world.launchInstance({ nodegroup: "expected" });
    cloud.world.stopInstance(lost.id);

    expect(await find(lost.id)).toEqual({
      status: "expected",
      instanceId: null,
      detail: "node group expected wants 1 nodes and has 0: a replacement will launch",
    });
  });

  it("expects none while the lost instance still runs (its agent died): Auto Scaling replaces no running instance", async () => {
    const lost = cloud.world.launchInstance({ nodegroup: "crashed" });

    expect(await find(lost.id)).toEqual({
      status: "none",
      instanceId: null,
      detail: "node group crashed has its 1 nodes: no replacement will launch for node-1",
    });
  });

  it("expects one when Auto Scaling holds the lost instance in a terminate hook", async () => {
    const lost = cloud.world.launchInstance({ nodegroup: "hooked" });
    servingInstance("hooked");

    const answer = await find(lost.id, { lifecycle: { lifecycleActionToken: "token" } });

    expect(answer).toEqual({
      status: "expected",
      instanceId: null,
      detail: `Auto Scaling is replacing ${lost.id}`,
    });
  });

  it("tells a scale-in from a replacement: the group keeps its desired size without the held instance", async () => {
    const lost = cloud.world.launchInstance({ nodegroup: "scaled" });
    servingInstance("scaled");
    cloud.world.scaleIn(lost.id);

    const answer = await find(lost.id, { lifecycle: { lifecycleActionToken: "token" } });

    expect(answer).toEqual({
      status: "scale-in",
      instanceId: null,
      detail: `node group scaled wants 1 nodes and keeps 1 without ${lost.id}: a scale-in, nothing replaces node-1`,
    });
  });

  it("gives up once the replacement wait has passed", async () => {
    process.env["STRATA_REPLACEMENT_WAIT_MS"] = "1000";
    const lost = cloud.world.launchInstance({ nodegroup: "waited" });
    cloud.world.stopInstance(lost.id);
    const detectedAt = new Date(NOW.getTime() - 60_000).toISOString();

    expect(await find(lost.id, { detectedAt })).toEqual({
      status: "none",
      instanceId: null,
      detail: "no replacement for node-1 in local-a within 1 s",
    });
  });

  it("answers none when the node group has all its instances", async () => {
    const lost = cloud.world.launchInstance({ nodegroup: "full" });
    servingInstance("full");
    cloud.world.terminateInstance(lost.id);

    expect(await find(lost.id)).toMatchObject({
      status: "none",
      detail: "node group full has its 1 nodes: no replacement will launch for node-1",
    });
  });

  it("answers none for an instance in no node group, an unknown one, or none at all", async () => {
    const loose = cloud.world.launchInstance({ zone: "local-a" });

    expect(await find(loose.id)).toEqual({
      status: "none",
      instanceId: null,
      detail: `instance ${loose.id} belongs to no EKS node group`,
    });
    expect(await find("i-00000000000000000")).toMatchObject({ status: "none" });
    expect(await find(null)).toEqual({
      status: "none",
      instanceId: null,
      detail: "the instance of node-1 is unknown",
    });
  });
});
