import { randomBytes } from "node:crypto";
import { readFileSync, writeFileSync } from "node:fs";
import { open } from "node:fs/promises";
import { join } from "node:path";
import { EC2Client } from "@aws-sdk/client-ec2";
import { pino } from "pino";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { DRIVE_MARKER } from "../../agent/aws/drive-devices.js";
import { type ClaimedDriveSet, claimDriveSet } from "../../agent/aws/drive-set.js";
import { ec2Node, takeInstance } from "../../agent/aws/startup.js";
import { log as agentLog, type Logger } from "../../agent/log.js";
import { DriveTag } from "../../core/drive-sets.js";
import { localAwsEnvironment } from "../../core/local-aws-environment.js";
import { type LocalDynamoDb, startLocalDynamoDb } from "../../core/state/local-dynamodb.js";
import { claimReplacement, replacementHolder } from "../../core/state/replacement-claims.js";
import { StateStore } from "../../core/state/store.js";
import { startInstanceMetadata } from "../../infra/local/aws/instance-metadata-endpoint.js";
import type { LocalInstance } from "../../infra/local/aws/local-ec2.js";
import { CLIENT_CONFIG, type LocalCloud, startLocalCloud } from "../local-cloud/aws-harness.js";
import { eventually } from "../support/eventually.js";
import { run } from "../support/run.js";
import { LoopDrives } from "./loop-drives.js";

const CLUSTER = "strata-eks-test";
const log = agentLog.child({}, { level: "silent" });
const MiB = 1024 * 1024;

let cloud: LocalCloud;
let ec2: EC2Client;
let drives: LoopDrives;
let instance: LocalInstance;

beforeAll(async () => {
  cloud = await startLocalCloud({ clusterName: CLUSTER });
  // The agent makes its EC2 client with no settings: the environment gives it what it needs.
  process.env.AWS_ACCESS_KEY_ID = CLIENT_CONFIG.credentials.accessKeyId;
  process.env.AWS_SECRET_ACCESS_KEY = CLIENT_CONFIG.credentials.secretAccessKey;
  ec2 = new EC2Client(CLIENT_CONFIG);
});

afterAll(async () => {
  ec2?.destroy();
  await cloud?.close();
});

beforeEach(() => {
  drives = new LoopDrives();
  instance = cloud.world.launchInstance({ nodegroup: `${CLUSTER}-local-a` });
});

afterEach(async () => {
  await drives.close();
});

/** An EBS volume of the cluster (plus `tags`) attached to the test's instance, with its loop device. */
async function attachDrive(tags: Record<string, string> = {}) {
  const volume = cloud.world.createVolume({
    zone: "local-a",
    sizeBytes: 64 * MiB,
    tags: { [DriveTag.cluster]: CLUSTER, ...tags },
    attachTo: { instanceId: instance.id },
  });
  return { volumeId: volume.id, device: await drives.add(volume.id) };
}

const claim = (onInstance = instance.id, clusterName = CLUSTER) =>
  claimDriveSet({ ec2, clusterName, instanceId: onInstance, byIdDir: drives.byIdDir, root: drives.dir, log });

const blkid = async (device: string) => run("blkid", ["-p", "-o", "export", device]);

async function refusal(call: Promise<unknown>): Promise<string> {
  try {
    await call;
  } catch (error) {
    return (error as Error).message;
  }
  throw new Error("the drive set was claimed; a refusal was expected");
}

describe("claiming an instance's drive set", () => {
  it("names a new drive, formats it, mounts it under the drive set and records whose it is", async () => {
    const { volumeId, device } = await attachDrive();
    expect(await refusal(blkid(device))).toMatch(/failed/);

    const node = await claim();

    expect(node.nodeId).toMatch(/^node-[0-9a-f]{10}$/);
    expect(node.zone).toBe("local-a");
    expect(node.volumeIds).toEqual([volumeId]);
    expect(node.drives).toEqual([{ path: join(drives.dir, "drive-sets", node.nodeId, "drives", volumeId) }]);
    expect(cloud.world.volume(volumeId).tags[DriveTag.driveSet]).toBe(node.nodeId);
    expect(await blkid(device)).toMatch(/^TYPE=ext4$/m);
    expect(LoopDrives.mountPointOf(device)).toBe(node.drives[0]!.path);
    expect(JSON.parse(readFileSync(join(node.drives[0]!.path, DRIVE_MARKER), "utf8"))).toEqual({
      cluster: CLUSTER,
      driveSet: node.nodeId,
      volumeId,
    });
  });

  it("finds the same drive set on the next start and keeps its data: mounted still, or mounted again", async () => {
    const { device } = await attachDrive();
    const first = await claim();
    const kept = join(first.drives[0]!.path, "replica-data");
    writeFileSync(kept, "written before the restart");

    const again = await claim();
    expect(again).toEqual(first);

    await run("umount", [first.drives[0]!.path]);
    const remounted = await claim();
    expect(remounted).toEqual(first);
    expect(LoopDrives.mountPointOf(device)).toBe(first.drives[0]!.path);
    expect(readFileSync(kept, "utf8")).toBe("written before the restart");
  });

  it("moved to a replacement instance, the drives bring their node with them", async () => {
    const { volumeId } = await attachDrive();
    const first = await claim();
    await run("umount", [first.drives[0]!.path]);
    cloud.world.terminateInstance(instance.id);
    const replacement = cloud.world.launchInstance({ nodegroup: `${CLUSTER}-local-a` });
    cloud.world.attachVolume({ volumeId, instanceId: replacement.id, device: "/dev/xvdf" });

    expect((await claim(replacement.id)).nodeId).toBe(first.nodeId);
  });

  it("adds a new drive to the drive set the instance's other drive makes", async () => {
    const tagged = await attachDrive();
    const first = await claim();
    const added = await attachDrive();

    const grown = await claim();

    expect(grown.nodeId).toBe(first.nodeId);
    expect(grown.volumeIds).toEqual([tagged.volumeId, added.volumeId].sort());
    expect(cloud.world.volume(added.volumeId).tags[DriveTag.driveSet]).toBe(first.nodeId);
    expect(LoopDrives.mountPointOf(added.device)).toBe(
      join(drives.dir, "drive-sets", first.nodeId, "drives", added.volumeId),
    );
  });

  it("refuses drives of two drive sets on one instance, naming both", async () => {
    const a = await attachDrive({ [DriveTag.driveSet]: "node-a" });
    const b = await attachDrive({ [DriveTag.driveSet]: "node-b" });
    const message = await refusal(claim());
    expect(message).toContain(`instance ${instance.id} holds drives of 2 drive sets`);
    expect(message).toContain(`${a.volumeId} (node-a)`);
    expect(message).toContain(`${b.volumeId} (node-b)`);
    expect(LoopDrives.mountPointOf(a.device)).toBeUndefined();
  });

  it("refuses a device with bytes it does not recognise, and leaves them as they were", async () => {
    const { volumeId, device } = await attachDrive();
    const foreign = randomBytes(4096);
    await writeAt(device, 8192, foreign);

    const message = await refusal(claim());

    expect(message).toContain(`EBS volume ${volumeId}`);
    expect(message).toContain("data blkid does not recognise");
    const reread = Buffer.alloc(foreign.length);
    const check = await open(device, "r");
    await check.read(reread, 0, reread.length, 8192);
    await check.close();
    expect(reread.equals(foreign)).toBe(true);
  });

  it("refuses a filesystem Strata did not make, and does not format it", async () => {
    const { volumeId, device } = await attachDrive();
    await run("mkfs.ext4", ["-q", "-L", "pgdata", device]);
    const before = await blkid(device);

    const message = await refusal(claim());

    expect(message).toContain(`EBS volume ${volumeId} (${device}) holds a ext4 signature (label "pgdata")`);
    expect(await blkid(device)).toBe(before);
    expect(LoopDrives.mountPointOf(device)).toBeUndefined();
  });

  it("refuses a device with a partition table", async () => {
    const { volumeId, device } = await attachDrive();
    await writeAt(device, 0, masterBootRecord());
    const message = await refusal(claim());
    expect(message).toContain(`EBS volume ${volumeId}`);
    expect(message).toContain("holds a dos partition table");
  });

  it("refuses a Strata drive of another cluster that was tagged as this one's", async () => {
    const { volumeId, device } = await attachDrive();
    const theirs = await claim();
    await run("umount", [theirs.drives[0]!.path]);
    cloud.world.createTags([volumeId], { [DriveTag.cluster]: "other-cluster" });

    const message = await refusal(claim(instance.id, "other-cluster"));

    expect(message).toContain(`EBS volume ${volumeId} holds drive ${volumeId} of drive set ${theirs.nodeId}`);
    expect(message).toContain(
      `in cluster ${CLUSTER}, but is tagged as drive set ${theirs.nodeId} of cluster other-cluster`,
    );
    expect(LoopDrives.mountPointOf(device)).toBeUndefined();
  });

  it("says which instance and tag it looked for when no drive is attached", async () => {
    cloud.world.createVolume({
      zone: "local-a",
      sizeBytes: 64 * MiB,
      tags: { [DriveTag.cluster]: "another-cluster" },
      attachTo: { instanceId: instance.id },
    });
    expect(await refusal(claim())).toContain(
      `no EBS volume tagged ${DriveTag.cluster}=${CLUSTER} and kept when its instance terminates ` +
        `(DeleteOnTermination false) is attached to instance ${instance.id}`,
    );
  });

  it("leaves out the root volume the launch template tagged too: it is deleted with its instance", async () => {
    const root = cloud.world.createVolume({
      zone: "local-a",
      sizeBytes: 64 * MiB,
      tags: { [DriveTag.cluster]: CLUSTER },
      attachTo: { instanceId: instance.id, device: "/dev/xvda", deleteOnTermination: true },
    });
    const rootDevice = await drives.add(root.id);
    await run("mkfs.ext4", ["-q", "-L", "cloudimg-rootfs", rootDevice]);
    const { volumeId } = await attachDrive();

    const node = await claim();

    expect(node.volumeIds).toEqual([volumeId]);
    expect(cloud.world.volume(root.id).tags[DriveTag.driveSet]).toBeUndefined();
    expect(LoopDrives.mountPointOf(rootDevice)).toBeUndefined();
  });

  it("names the volume whose device link is missing", async () => {
    const volume = cloud.world.createVolume({
      zone: "local-a",
      sizeBytes: 64 * MiB,
      tags: { [DriveTag.cluster]: CLUSTER },
      attachTo: { instanceId: instance.id },
    });
    expect(await refusal(claim())).toContain(
      `EBS volume ${volume.id} is attached to this instance but ${drives.byIdDir}/nvme-Amazon_Elastic_Block_Store_${volume.id.replace("-", "")} does not exist`,
    );
  });
});

describe("a new instance that a lost node's recovery may take as its replacement", () => {
  let dynamoDb: LocalDynamoDb;
  let store: StateStore;

  beforeAll(async () => {
    dynamoDb = await startLocalDynamoDb();
    Object.assign(process.env, localAwsEnvironment(dynamoDb.endpoint));
    store = new StateStore({ tableName: "strata-eks-claims" });
    await store.ensureTable();
  });

  afterAll(async () => {
    store?.close();
    await dynamoDb?.close();
  });

  const claimTaking = (
    options: { log?: Logger; moveWait?: { timeoutMs: number; intervalMs: number } } = {},
  ) =>
    claimDriveSet({
      ec2,
      clusterName: CLUSTER,
      instanceId: instance.id,
      byIdDir: drives.byIdDir,
      root: drives.dir,
      log: options.log ?? log,
      takeInstance: (nodeId) => takeInstance(store.leases, instance.id, nodeId),
      ...(options.moveWait ? { moveWait: options.moveWait } : {}),
    });

  it("is taken for its new node first, so no recovery moves another node's drives onto it", async () => {
    await attachDrive();
    const node = await claimTaking();
    expect(await replacementHolder(store.leases, instance.id)).toBe(node.nodeId);
    await expect(claimReplacement(store.leases, instance.id, "node-lost")).rejects.toThrow(
      `instance ${instance.id} is the replacement of ${node.nodeId} already`,
    );
  });

  it("taken by a recovery first, waits for the lost node's drives and serves that node, its new drive joining", async () => {
    await claimReplacement(store.leases, instance.id, "node-lost");
    const fresh = await attachDrive();
    const lost = cloud.world.createVolume({
      zone: "local-a",
      sizeBytes: 64 * MiB,
      tags: { [DriveTag.cluster]: CLUSTER, [DriveTag.driveSet]: "node-lost" },
    });
    await drives.add(lost.id);
    const said: string[] = [];
    const listening = pino({ level: "info" }, { write: (line: string) => void said.push(line) });

    const claimed = claimTaking({ log: listening, moveWait: { timeoutMs: 60_000, intervalMs: 50 } });
    await eventually(
      async () => said.some((line) => line.includes("waiting for its drives")),
      "the agent to wait",
    );
    // What move-drives does once it has claimed the replacement.
    cloud.world.attachVolume({ volumeId: lost.id, instanceId: instance.id, device: "/dev/xvdg" });
    const node = await claimed;

    expect(node.nodeId).toBe("node-lost");
    expect(node.volumeIds).toEqual([fresh.volumeId, lost.id].sort());
    expect(cloud.world.volume(fresh.volumeId).tags[DriveTag.driveSet]).toBe("node-lost");
  });

  it("says which lost node it waited for when that node's drives do not come", async () => {
    await claimReplacement(store.leases, instance.id, "node-gone");
    await attachDrive();
    const message = await refusal(claimTaking({ moveWait: { timeoutMs: 100, intervalMs: 20 } }));
    expect(message).toBe(
      `instance ${instance.id} is the replacement of lost node node-gone, but that node's drives were not ` +
        "attached within 0.1 s: the agent looks again on its next start",
    );
  });
});

describe("an agent's start on EC2", () => {
  it("learns its instance from the instance metadata service and claims that instance's drives", async () => {
    const { volumeId } = await attachDrive();
    const metadata = await startInstanceMetadata(cloud.world, instance.id);
    const env = {
      ...process.env,
      STRATA_CLUSTER_NAME: CLUSTER,
      STRATA_DISK_BY_ID_DIR: drives.byIdDir,
      AWS_EC2_METADATA_SERVICE_ENDPOINT: metadata.url,
    };
    let node: ClaimedDriveSet & { instanceId: string };
    try {
      node = await ec2Node({ root: drives.dir, stateTable: null, log }, env);
    } finally {
      await metadata.close();
    }
    expect(node.instanceId).toBe(instance.id);
    expect(node.volumeIds).toEqual([volumeId]);
  });

  it("is refused without the cluster's name, or without a metadata service to ask", async () => {
    expect(await refusal(ec2Node({ root: drives.dir, stateTable: null, log }, {}))).toBe(
      "--ec2-drives needs STRATA_CLUSTER_NAME: the cluster whose drives this instance holds",
    );
    const metadata = await startInstanceMetadata(cloud.world, instance.id);
    await metadata.close();
    const message = await refusal(
      ec2Node(
        { root: drives.dir, stateTable: null, log },
        {
          STRATA_CLUSTER_NAME: CLUSTER,
          AWS_EC2_METADATA_SERVICE_ENDPOINT: metadata.url,
        },
      ),
    );
    expect(message).toContain(
      `cannot read this instance's id from the instance metadata service at ${metadata.url}`,
    );
    expect(message).toContain("or set STRATA_INSTANCE_ID");
  });
});

async function writeAt(device: string, offset: number, bytes: Buffer): Promise<void> {
  const handle = await open(device, "r+");
  try {
    await handle.write(bytes, 0, bytes.length, offset);
  } finally {
    await handle.close();
  }
}

/** A DOS partition table with one Linux partition, as fdisk would leave it. */
function masterBootRecord(): Buffer {
  const sector = Buffer.alloc(512);
  sector.writeUInt32LE(0x78563412, 440);
  sector[446 + 4] = 0x83;
  sector.writeUInt32LE(2048, 446 + 8);
  sector.writeUInt32LE(4096, 446 + 12);
  sector.writeUInt16LE(0xaa55, 510);
  return sector;
}
