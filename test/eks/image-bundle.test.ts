import { randomBytes } from "node:crypto";
import { cpSync, existsSync, mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DriveTag } from "../../core/drive-sets.js";
import { localAwsEnvironment } from "../../core/local-aws-environment.js";
import { type LocalDynamoDb, startLocalDynamoDb } from "../../core/state/local-dynamodb.js";
import { replacementHolder } from "../../core/state/replacement-claims.js";
import { StateStore } from "../../core/state/store.js";
import { startInstanceMetadata } from "../../infra/local/aws/instance-metadata-endpoint.js";
import { type LocalCloud, startLocalCloud } from "../local-cloud/aws-harness.js";
import { AgentProcess } from "../support/agent-process.js";
import { eventually } from "../support/eventually.js";
import { run } from "../support/run.js";
import { LoopDrives } from "./loop-drives.js";
import { agentContainer, argument, manifestOf } from "./manifests.js";

const MiB = 1024 * 1024;
const IMAGE_BUNDLE = join(import.meta.dirname, "..", "..", "dist", "image");

/**
 * The agent image's contents (dist/image, what the Dockerfile copies) copied alone to a directory
 * with no node_modules anywhere above it, as in the image: whatever the bundle needs, it carries.
 */
let app: string;

beforeAll(() => {
  if (!existsSync(join(IMAGE_BUNDLE, "agent.mjs")))
    throw new Error(`${IMAGE_BUNDLE}/agent.mjs is missing: run \`node scripts/build.mjs\` first`);
  app = mkdtempSync(join(tmpdir(), "strata-image-"));
  cpSync(IMAGE_BUNDLE, app, { recursive: true });
  for (let dir = app; dirname(dir) !== dir; dir = dirname(dir))
    expect(readdirSync(dir), `node_modules above the image copy, in ${dir}`).not.toContain("node_modules");
});

afterAll(() => {
  rmSync(app, { recursive: true, force: true });
});

/** The DaemonSet's probe and scrape paths, as the agent answers them. */
async function answersProbes(agent: AgentProcess): Promise<void> {
  const container = agentContainer();
  const annotations = manifestOf("DaemonSet").spec!.template.metadata.annotations;
  for (const probe of [container.startupProbe, container.readinessProbe, container.livenessProbe])
    expect((await fetch(`${agent.endpoints.apiUrl}${probe.httpGet.path}`)).status).toBe(200);
  const metrics = await fetch(`${agent.endpoints.apiUrl}${annotations["prometheus.io/path"]}`);
  expect(metrics.status).toBe(200);
  expect(await metrics.text()).toMatch(/^# HELP /m);
}

/** Writes a pattern through NBD with qemu-io and reads it back the same way. */
async function writeAndReadBack(uri: string): Promise<void> {
  await run("qemu-io", ["-f", "raw", uri, "-c", "write -P 0x5a 1M 2M"]);
  const read = await run("qemu-io", ["-f", "raw", uri, "-c", "read -P 0x5a 1M 2M"]);
  expect(read).toContain("read 2097152/2097152 bytes");
}

describe("the agent image's bundle, alone", () => {
  it("serves volumes standalone, its embedded state store surviving a restart", async () => {
    const agent = new AgentProcess(undefined, [], {}, join(app, "agent.mjs"));
    try {
      await agent.start();
      await answersProbes(agent);
      const uri = await agent.createAttachedVolume("image-vol", 64 * MiB);
      const info = JSON.parse(await run("nbdinfo", ["--json", "--no-content", uri])) as {
        exports: { "export-size": number }[];
      };
      expect(info.exports[0]!["export-size"]).toBe(64 * MiB);
      await writeAndReadBack(uri);

      await agent.stop();
      await agent.start();
      const listed = await agent.api<{ volumes: { name: string }[] }>("GET", "/v1/volumes");
      expect(listed.body.volumes.map((v) => v.name)).toEqual(["image-vol"]);
      const read = await run("qemu-io", ["-f", "raw", agent.nbdUri("image-vol"), "-c", "read -P 0x5a 1M 2M"]);
      expect(read).toContain("read 2097152/2097152 bytes");
    } finally {
      await agent.destroy();
    }
  });
});

describe("the agent image's bundle, as the DaemonSet starts it", () => {
  it("refuses a node id, zone or drive given with --ec2-drives, which finds them itself", async () => {
    const refused = run(process.execPath, [
      join(app, "agent.mjs"),
      "--data-dir",
      app,
      "--ec2-drives",
      "--zone",
      "a",
    ]);
    await expect(refused).rejects.toThrow(
      "strata-agent: --ec2-drives finds the node id, zone and drives itself: leave out --node-id, --zone and --drive",
    );
  });

  const CLUSTER = "strata-image-test";
  let cloud: LocalCloud;
  let dynamoDb: LocalDynamoDb;
  let drives: LoopDrives;

  beforeAll(async () => {
    cloud = await startLocalCloud({ clusterName: CLUSTER });
    dynamoDb = await startLocalDynamoDb();
    drives = new LoopDrives();
  });

  afterAll(async () => {
    await drives?.close();
    await dynamoDb?.close();
    await cloud?.close();
  });

  /**
   * The DaemonSet's arguments as Kubernetes expands them ($(NAME) from the container's env), with
   * the node's address the loopback, free ports instead of the fixed ones (this machine may run other
   * agents), and the host path a temporary directory.
   */
  function daemonSetArguments(dataDir: string, env: Record<string, string>): string[] {
    const container = agentContainer();
    const hostPath = argument(container, "--data-dir");
    const variables: Record<string, string> = { ...env, NODE_IP: "127.0.0.1" };
    return container.args.map((arg) =>
      arg
        .replace(/\$\(([A-Z0-9_]+)\)/g, (reference, name: string) => variables[name] ?? reference)
        .replace(/^(127\.0\.0\.1):\d+$/, "$1:0")
        .replace(hostPath, dataDir),
    );
  }

  it("finds its drive set on the instance, formats and mounts the drive, and serves from it", async () => {
    const instance = cloud.world.launchInstance({ nodegroup: `${CLUSTER}-local-b` });
    const volume = cloud.world.createVolume({
      zone: "local-b",
      sizeBytes: 256 * MiB,
      tags: { [DriveTag.cluster]: CLUSTER },
      attachTo: { instanceId: instance.id },
    });
    const device = await drives.add(volume.id, 256 * MiB);
    const metadata = await startInstanceMetadata(cloud.world, instance.id);
    const tableName = "strata-image-state";
    Object.assign(process.env, localAwsEnvironment(dynamoDb.endpoint));
    const store = new StateStore({ tableName });
    await store.ensureTable();

    const env = {
      // The ConfigMap's settings, pointed at this test's cluster and table.
      ...manifestOf("ConfigMap").data!,
      STRATA_CLUSTER_NAME: CLUSTER,
      STRATA_STATE_TABLE: tableName,
      STRATA_CLUSTER_SECRET: randomBytes(32).toString("base64"),
      ...localAwsEnvironment(dynamoDb.endpoint),
      ...cloud.endpoints.environment,
      AWS_EC2_METADATA_SERVICE_ENDPOINT: metadata.url,
      STRATA_DISK_BY_ID_DIR: drives.byIdDir,
    };
    const agent = new AgentProcess(
      drives.dir,
      // After the harness's own arguments, so the DaemonSet's win where both give one.
      daemonSetArguments(join(drives.dir, "node"), env),
      env,
      join(app, "agent.mjs"),
    );
    try {
      await agent.start();
      await answersProbes(agent);

      const nodeId = cloud.world.volume(volume.id).tags[DriveTag.driveSet]!;
      expect(nodeId).toMatch(/^node-[0-9a-f]{10}$/);
      const drivePath = join(agent.dataDir, "drive-sets", nodeId, "drives", volume.id);
      expect(LoopDrives.mountPointOf(device)).toBe(drivePath);
      const node = await agent.api<{ id: string; zone: string }>("GET", "/v1/node");
      expect(node.body).toMatchObject({ id: nodeId, zone: "local-b" });
      // Registered (with the instance it runs on) just after it starts serving.
      await eventually(
        async () => (await store.nodes.list()).some((n) => n.id === nodeId),
        "the node's registration",
        10_000,
      ).catch((error: Error) => {
        throw new Error(`${error.message}; the agent said: ${agent.stderr}`);
      });
      expect((await store.nodes.get(nodeId)).instanceId).toBe(instance.id);
      // Taken for this node before it was named: no lost node's recovery moves its drives here.
      expect(await replacementHolder(store.leases, instance.id)).toBe(nodeId);

      await writeAndReadBack(await agent.createAttachedVolume("on-ebs", 32 * MiB));
      // The replica's files are on the drive: the mounted filesystem holds more than its marker.
      expect(
        readdirSync(drivePath).filter((name) => name !== "lost+found" && !name.startsWith(".strata")),
      ).not.toEqual([]);
    } finally {
      await agent.kill9();
      await metadata.close();
      store.close();
    }
  });
});
