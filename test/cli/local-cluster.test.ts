import { mkdtemp, readFile, rm, stat, writeFile } from "node:fs/promises";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { GetObjectCommand, HeadBucketCommand, PutObjectCommand } from "@aws-sdk/client-s3";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Attachment, Snapshot, Volume } from "../../core/model.js";
import { AgentFile } from "../../infra/local/agent-file.js";
import { isAlive } from "../../infra/local/processes.js";
import { s3ClientAt } from "../../infra/local/s3/local-s3.js";
import { connectTransmission } from "../nbd/wire.js";
import { eventually } from "../support/eventually.js";
import { environmentOf, processesMentioning } from "../support/processes.js";
import {
  clusterUp,
  oneSentence,
  prepareClusterDir,
  type RunningCluster,
  readCluster,
  strata,
  tearDownCluster,
} from "./strata-process.js";

/**
 * The whole user journey against real processes: `strata cluster up` supervising a real agent,
 * and every CLI command run as its own process, as a user would type it. One node keeps it quick;
 * multi-node.test.ts covers what more nodes add.
 */
const up = (dir: string) => clusterUp(dir, ["--nodes", "1"]);

let dir: string;
let cluster: RunningCluster | undefined;
/** Runs a command against this test's cluster directory. */
const run = (...args: string[]) => strata(["--dir", dir, ...args]);
const json = async <T>(schema: { parse(value: unknown): T }, ...args: string[]) => {
  const outcome = await run("--json", ...args);
  expect(outcome.stderr).toBe("");
  expect(outcome.code).toBe(0);
  return schema.parse(JSON.parse(outcome.stdout));
};

beforeAll(async () => {
  dir = await prepareClusterDir("strata-cli-");
});

afterAll(() => tearDownCluster(dir, cluster));

async function stop(): Promise<number | string> {
  const running = cluster!;
  cluster = undefined;
  running.process.kill("SIGINT");
  return running.exited;
}

describe("strata against a local cluster", () => {
  it("starts the cluster and tells how to use it", async () => {
    cluster = await up(dir);
    const node = cluster.file.nodes[0]!;
    expect(cluster.file.nodes).toHaveLength(1);
    expect(node).toMatchObject({ id: "node-1", zone: "local-a", dataDir: join(dir, "nodes", "node-1") });

    const output = cluster.output();
    expect(output).toMatch(/^NODE\s+ZONE\s+STATE\s+VOLUMES/m);
    expect(output).toMatch(/^No volumes\.$/m);
    expect(output).toMatch(/^node-1\s+local-a\s+up\s+0\s/m);
    expect(output).toContain(`--dir ${dir} volume create demo --size 1GiB`);
    expect(output).toContain(`nbdinfo nbd://${node.nbdAddress}/demo`);

    const agent = AgentFile.parse(JSON.parse(await readFile(join(node.dataDir, "agent.json"), "utf8")));
    expect(agent.apiUrl).toBe(node.apiUrl);
  });

  it("runs an S3 server for cloudsnaps, names it in cluster.json and gives it to the agents", async () => {
    const file = cluster!.file;
    const endpoint = file.cloud?.endpoints.AWS_ENDPOINT_URL_S3;
    const passphraseFile = join(dir, "cloudsnap-passphrase");
    expect(endpoint).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    expect(file.cloud?.cloudsnaps).toEqual({ bucket: "strata-cloudsnaps", passphraseFile });
    expect(cluster!.output()).toContain(
      `cloudsnaps: s3rver at ${endpoint}, bucket strata-cloudsnaps, passphrase in ${passphraseFile}`,
    );
    expect((await stat(passphraseFile)).mode & 0o777).toBe(0o600);
    expect((await readFile(passphraseFile, "utf8")).trim()).toMatch(/^[0-9a-f]{64}$/);

    const agent = AgentFile.parse(
      JSON.parse(await readFile(join(file.nodes[0]!.dataDir, "agent.json"), "utf8")),
    );
    expect(await environmentOf(agent.pid)).toMatchObject({
      AWS_ENDPOINT_URL_S3: endpoint,
      STRATA_CLOUDSNAP_BUCKET: "strata-cloudsnaps",
      STRATA_CLOUDSNAP_PASSPHRASE_FILE: passphraseFile,
    });

    const s3 = s3ClientAt(endpoint!);
    try {
      const object = { Bucket: "strata-cloudsnaps", Key: "probe/hello" };
      await s3.send(new PutObjectCommand({ ...object, Body: "through the cluster's own S3" }));
      const got = await s3.send(new GetObjectCommand(object));
      expect(await got.Body!.transformToString()).toBe("through the cluster's own S3");
    } finally {
      s3.destroy();
    }
  });

  it("lets a second cluster use the first one's S3 endpoint, a bucket of its choice and the passphrase", async () => {
    const endpoint = cluster!.file.cloud!.endpoints.AWS_ENDPOINT_URL_S3!;
    const passphraseFile = join(dir, "cloudsnap-passphrase");
    const secondDir = await mkdtemp(join(tmpdir(), "strata-cli-second-"));
    let second: RunningCluster | undefined;
    try {
      second = await clusterUp(secondDir, [
        "--nodes",
        "1",
        "--s3-endpoint",
        endpoint,
        "--bucket",
        "shared-snaps",
        "--cloudsnap-passphrase-file",
        passphraseFile,
      ]);
      expect(second.file.cloud?.endpoints.AWS_ENDPOINT_URL_S3).toBe(endpoint);
      expect(second.file.cloud?.cloudsnaps).toEqual({ bucket: "shared-snaps", passphraseFile });
      expect(second.output()).toContain(
        `cloudsnaps: S3 at ${endpoint} (not started here), bucket shared-snaps, passphrase in ${passphraseFile}`,
      );
      // No server and no passphrase of its own.
      expect(await processesMentioning(join(secondDir, "s3"))).toEqual([]);
      await expect(stat(join(secondDir, "cloudsnap-passphrase"))).rejects.toThrow(/ENOENT/);
      // The bucket it asked for was made on the first cluster's server.
      const s3 = s3ClientAt(endpoint);
      try {
        await s3.send(new HeadBucketCommand({ Bucket: "shared-snaps" }));
      } finally {
        s3.destroy();
      }
    } finally {
      await tearDownCluster(secondDir, second);
    }
  });

  it("shows the cluster status as a table and as JSON", async () => {
    const table = await run("cluster", "status");
    expect(table.code).toBe(0);
    expect(table.stdout).toMatch(
      /^NODE\s+ZONE\s+STATE\s+VOLUMES\s+CAPACITY\s+USED\s+PROVISIONED\s+HEARTBEAT\s+API\s+NBD\n/,
    );
    const status = JSON.parse((await run("cluster", "status", "--json")).stdout) as {
      pid: number;
      nodes: { state: string; live: { state: string } }[];
    };
    expect(status.pid).toBe(cluster!.process.pid);
    expect(status.nodes[0]!.state).toBe("up");
    expect(status.nodes[0]!.live.state).toBe("up");
  });

  it("creates, lists and inspects volumes", async () => {
    const created = await run(
      "volume",
      "create",
      "db",
      "--size",
      "1GiB",
      "--label",
      "app=pg",
      "--label",
      "tier=gold",
    );
    expect(created).toMatchObject({ code: 0, stdout: 'volume "db" created (1 GiB)\n', stderr: "" });

    const asJson = await json(Volume, "volume", "create", "scratch", "--size", "64MiB");
    expect(asJson).toMatchObject({ name: "scratch", sizeBytes: 64 * 1024 ** 2 });

    const list = await run("volume", "list");
    const [header, ...rows] = list.stdout.trimEnd().split("\n");
    expect(header).toMatch(/^NAME\s+SIZE\s+ALLOCATED\s+ATTACHED\s+REPLICAS\s+SNAPSHOTS\s+AGE$/);
    expect(rows).toHaveLength(2);
    expect(rows[0]).toMatch(/^db\s+1 GiB\s+0 B\s+-\s+1\/1\s+0\s+\d+s$/);
    // Columns line up: every row starts its SIZE cell where the header does.
    expect(rows.map((row) => row.indexOf("GiB") - 2)).toContain(header!.indexOf("SIZE"));

    const listed = await json(
      { parse: (value: unknown) => (value as { volumes: unknown[] }).volumes.map((v) => Volume.parse(v)) },
      "volume",
      "list",
    );
    expect(listed.map((v) => v.name)).toEqual(["db", "scratch"]);

    const inspect = await run("volume", "inspect", "db");
    expect(inspect.code).toBe(0);
    expect(inspect.stdout).toMatch(/^Name:\s+db$/m);
    expect(inspect.stdout).toMatch(/^Size:\s+1 GiB \(1073741824 bytes\)$/m);
    expect(inspect.stdout).toMatch(/^Labels:\s+app=pg,tier=gold$/m);
    expect(inspect.stdout).toMatch(/^Epoch:\s+\d+$/m);
    expect(inspect.stdout).toMatch(/^Attached:\s+no$/m);
    expect(inspect.stdout).toMatch(/^ {2}node-1\s+local-a\s+in-sync\s+-\s+\S+$/m);
    expect((await json(Volume, "volume", "inspect", "db")).labels).toEqual({ app: "pg", tier: "gold" });
  });

  it("attaches a volume and prints how to reach it over NBD", async () => {
    const attach = await run("volume", "attach", "db");
    expect(attach.code).toBe(0);
    const nbdAddress = cluster!.file.nodes[0]!.nbdAddress;
    expect(attach.stdout).toMatch(new RegExp(`^NBD URI:\\s+nbd://${nbdAddress}/db$`, "m"));
    expect(attach.stdout).toContain(`nbd+unix:///db?socket=${join(dir, "nodes", "node-1", "nbd.sock")}`);
    expect(attach.stdout).toContain(`nbdinfo nbd://${nbdAddress}/db`);

    // Attaching again is harmless and gives the same endpoints, here as the API's JSON.
    const again = await json(Attachment, "volume", "attach", "db");
    expect(again).toMatchObject({ volume: "db", node: "node-1", nbdUri: `nbd://${nbdAddress}/db` });

    const inspect = await run("volume", "inspect", "db");
    expect(inspect.stdout).toMatch(/^Attached:\s+node-1$/m);
    expect(inspect.stdout).toMatch(new RegExp(`^NBD URI:\\s+nbd://${nbdAddress}/db$`, "m"));
  });

  it("refuses to delete an attached volume, or to revert one a client is connected to", async () => {
    const remove = await run("volume", "delete", "db");
    expect(remove.code).toBe(1);
    expect(oneSentence(remove)).toMatch(/attached/);

    await run("snapshot", "create", "db", "--name", "s1");
    const volume = await json(Volume, "volume", "inspect", "db");
    const port = Number(new URL(volume.nbdUri!).port);
    const { client } = await connectTransmission(port, "db");
    try {
      const revert = await run("snapshot", "revert", "db@s1");
      expect(revert.code).toBe(1);
      expect(oneSentence(revert)).toMatch(/NBD client connection\(s\) are open/);
    } finally {
      client.socket.destroy();
      await client.closed;
    }
  });

  it("snapshots, clones, reverts and deletes snapshots", async () => {
    const auto = await json(Snapshot, "snapshot", "create", "db");
    expect(auto.volume).toBe("db");

    const table = await run("snapshot", "list", "db");
    expect(table.stdout).toMatch(/^NAME\s+VOLUME\s+EXCLUSIVE\s+AGE\n/);
    expect(table.stdout).toMatch(/^s1\s+db\s+\S+ \S+\s+\d+s$/m);
    const listed = await json(
      {
        parse: (value: unknown) =>
          (value as { snapshots: unknown[] }).snapshots.map((s) => Snapshot.parse(s)),
      },
      "snapshot",
      "list",
      "db",
    );
    expect(listed.map((s) => s.name).sort()).toEqual([auto.name, "s1"].sort());

    const clone = await run("snapshot", "clone", "db@s1", "--to", "db-clone", "--label", "from=s1");
    expect(clone).toMatchObject({ code: 0, stdout: 'volume "db-clone" created from snapshot "db@s1"\n' });
    expect((await json(Volume, "volume", "inspect", "db-clone")).labels).toEqual({ from: "s1" });

    expect((await run("volume", "detach", "db")).stdout).toBe('volume "db" detached\n');
    const revert = await run("snapshot", "revert", "db@s1");
    expect(revert).toMatchObject({ code: 0, stdout: 'volume "db" reverted to snapshot "db@s1"\n' });

    const removed = await run("snapshot", "delete", `db@${auto.name}`);
    expect(removed).toMatchObject({ code: 0, stdout: `snapshot "db@${auto.name}" deleted\n` });
    const remaining = await json(
      {
        parse: (value: unknown) => (value as { snapshots: { name: string }[] }).snapshots.map((s) => s.name),
      },
      "snapshot",
      "list",
      "db",
    );
    expect(remaining).toEqual(["s1"]);
  });

  it("grows a volume and refuses to shrink it", async () => {
    const grow = await run("volume", "resize", "db", "--size", "2GiB");
    expect(grow).toMatchObject({ code: 0, stdout: 'volume "db" resized to 2 GiB\n' });
    const shrink = await run("volume", "resize", "db", "--size", "1GiB");
    expect(shrink.code).toBe(1);
    expect(oneSentence(shrink)).toMatch(/shrink/);
  });

  it("answers bad input with one sentence and a non-zero exit", async () => {
    const cases: { args: string[]; code: number; message: RegExp }[] = [
      { args: ["volume", "inspect", "nope"], code: 1, message: /^volume "nope" not found$/ },
      {
        args: ["volume", "create", "db", "--size", "1GiB"],
        code: 1,
        message: /^volume "db" already exists$/,
      },
      {
        args: ["volume", "create", "v0", "--size", "0"],
        code: 2,
        message: /^invalid size "0": .*greater than 0/,
      },
      { args: ["volume", "create", "v1", "--size", "ten"], code: 2, message: /^invalid size "ten"/ },
      { args: ["volume", "create", "v2", "--size", "4097"], code: 2, message: /multiple of 4 KiB/ },
      { args: ["volume", "create", "-", "--size", "1GiB"], code: 2, message: /^invalid volume name "-"/ },
      { args: ["volume", "create", "a b", "--size", "1GiB"], code: 2, message: /^invalid volume name "a b"/ },
      {
        args: ["volume", "create", "v3", "--size", "1GiB", "--label", "x"],
        code: 2,
        message: /^invalid label "x"/,
      },
      { args: ["snapshot", "delete", "db-s1"], code: 2, message: /^invalid snapshot reference "db-s1"/ },
      {
        args: ["snapshot", "clone", "db@s1@x", "--to", "c"],
        code: 2,
        message: /^invalid snapshot reference/,
      },
      { args: ["snapshot", "revert", "db@nope"], code: 1, message: /nope/ },
      { args: ["volume", "create", "v4"], code: 2, message: /--size/ },
      { args: ["volume", "frobnicate"], code: 2, message: /unknown command/ },
    ];
    for (const { args, code, message } of cases) {
      const outcome = await run(...args);
      expect({ args, code: outcome.code }).toEqual({ args, code });
      const lines = outcome.stderr.trimEnd().split("\n");
      expect(lines[0], args.join(" ")).toMatch(/^error: /);
      expect(lines[0]!.slice("error: ".length), args.join(" ")).toMatch(message);
    }
    // Nothing was created by the refused commands.
    const names = (await json({ parse: (v: unknown) => v as { volumes: Volume[] } }, "volume", "list"))
      .volumes;
    expect(names.map((v) => v.name)).toEqual(["db", "db-clone", "scratch"]);
  });

  it("refuses a second supervisor on the same directory", async () => {
    const second = await strata(["cluster", "up", "--dir", dir, "--api-port", "0", "--nbd-port", "0"]);
    expect(second.code).toBe(1);
    expect(oneSentence(second)).toContain(
      `already running in ${dir} (supervisor pid ${cluster!.process.pid})`,
    );
  });

  it("restarts an agent that dies, with the same endpoints", async () => {
    const node = cluster!.file.nodes[0]!;
    const before = AgentFile.parse(JSON.parse(await readFile(join(node.dataDir, "agent.json"), "utf8")));
    process.kill(before.pid, "SIGKILL");
    await eventually(
      async () => cluster!.output().includes("agent restarted"),
      "the supervisor restarts the agent",
    );
    expect(cluster!.output()).toMatch(/node-1: agent \(pid \d+\) stopped unexpectedly \(signal SIGKILL\)/);
    const after = await readCluster(dir);
    expect(after?.nodes[0]).toEqual(node);
    expect((await run("volume", "list")).stdout).toMatch(/^db\s+2 GiB/m);
  });

  it("stops on Ctrl-C, removing cluster.json, and brings every volume back on the next start", async () => {
    expect((await run("volume", "delete", "scratch")).stdout).toBe('volume "scratch" deleted\n');
    expect(await stop()).toBe(0);
    expect(await readCluster(dir)).toBeUndefined();

    const down = await run("volume", "list");
    expect(down.code).toBe(1);
    expect(oneSentence(down)).toBe(
      `no Strata cluster is running in ${dir}: start one with \`strata cluster up\``,
    );

    cluster = await up(dir);
    const volumes = (await json({ parse: (v: unknown) => v as { volumes: Volume[] } }, "volume", "list"))
      .volumes;
    expect(volumes.map((v) => [v.name, v.sizeBytes, v.snapshotCount])).toEqual([
      ["db", 2 * 1024 ** 3, 1],
      ["db-clone", 1024 ** 3, 0],
    ]);
  });

  it("takes over from a supervisor that was killed, stopping its wedged agent", async () => {
    // A wedged agent: it neither answers nor notices that its supervisor is gone.
    const node = cluster!.file.nodes[0]!;
    const wedged = AgentFile.parse(JSON.parse(await readFile(join(node.dataDir, "agent.json"), "utf8")));
    process.kill(wedged.pid, "SIGSTOP");
    const status = await run("cluster", "status");
    expect(status.code).toBe(0);
    expect(status.stdout).toMatch(/^node-1\s+local-a\s+unreachable\s/m);

    const [s3Server] = await processesMentioning(join(dir, "s3"));
    expect(s3Server).toBeDefined();
    const killed = cluster!;
    cluster = undefined;
    killed.process.kill("SIGKILL");
    await killed.exited;
    // The S3 server does not outlive its supervisor, however that ends.
    await eventually(async () => !isAlive(s3Server!), "the S3 server of the killed supervisor exits", 10_000);
    expect((await readCluster(dir))?.pid).toBe(killed.process.pid);

    const stale = await run("volume", "list");
    expect(stale.code).toBe(1);
    expect(oneSentence(stale)).toMatch(/is not running \(its supervisor, pid \d+, has exited\)/);

    cluster = await up(dir);
    expect(cluster.output()).toContain(
      `its previous supervisor (pid ${killed.process.pid}) is no longer running`,
    );
    expect(cluster.output()).toContain(
      `stopping the agent left over from the previous run (pid ${wedged.pid})`,
    );
    expect(cluster.output()).toContain("the leftover agent did not stop within 10 s and was killed");
    expect((await run("volume", "list")).stdout).toMatch(/^db-clone\s+1 GiB/m);
    expect(await stop()).toBe(0);
  });
});

describe("strata when the cluster is not there", () => {
  it("says the agent cannot be reached and how to start it", async () => {
    // A cluster.json naming a live process (this test) and a port nobody listens on.
    const deadPort = await new Promise<number>((resolve) => {
      const server = createServer().listen(0, "127.0.0.1", () => {
        const { port } = server.address() as { port: number };
        server.close(() => resolve(port));
      });
    });
    const orphanDir = await mkdtemp(join(tmpdir(), "strata-cli-"));
    const apiUrl = `http://127.0.0.1:${deadPort}`;
    const node = {
      id: "node-1",
      zone: "local-a",
      apiUrl,
      nbdAddress: "127.0.0.1:1",
      nbdSocket: null,
      dataDir: orphanDir,
    };
    await writeFile(
      join(orphanDir, "cluster.json"),
      JSON.stringify({
        pid: process.pid,
        startedAt: new Date().toISOString(),
        dynamodb: { endpoint: "http://127.0.0.1:1", table: "strata-state" },
        nodes: [node],
      }),
    );
    try {
      const outcome = await strata(["volume", "list"], { STRATA_HOME: orphanDir });
      expect(outcome.code).toBe(1);
      expect(oneSentence(outcome)).toBe(
        `cannot reach the Strata agent at ${apiUrl}: is it running (locally, \`strata cluster up\`), and is its API port open to you?`,
      );
    } finally {
      await rm(orphanDir, { recursive: true, force: true });
    }
  });

  it("refuses S3 options and a passphrase file it cannot use, in one sentence", async () => {
    const closed = createServer();
    const port = await new Promise<number>((resolve) =>
      closed.listen(0, "127.0.0.1", () => resolve((closed.address() as { port: number }).port)),
    );
    await new Promise((resolve) => closed.close(resolve));
    const badDir = await mkdtemp(join(tmpdir(), "strata-cli-"));
    const up = (...args: string[]) =>
      strata([
        "cluster",
        "up",
        "--dir",
        badDir,
        "--nodes",
        "1",
        "--api-port",
        "0",
        "--nbd-port",
        "0",
        ...args,
      ]);
    try {
      const cases: { args: string[]; code: number; message: RegExp }[] = [
        { args: ["--s3-endpoint", "ftp://x"], code: 2, message: /^invalid endpoint "ftp:\/\/x"/ },
        { args: ["--bucket", "Not_A_Bucket"], code: 2, message: /^invalid bucket name "Not_A_Bucket"/ },
        {
          args: ["--cloudsnap-passphrase-file", join(badDir, "missing")],
          code: 1,
          message: new RegExp(
            `^cannot use the cloudsnap passphrase file ${join(badDir, "missing")}: .*ENOENT`,
          ),
        },
        {
          args: ["--s3-endpoint", `http://127.0.0.1:${port}`],
          code: 1,
          message: new RegExp(
            `^the S3 endpoint http://127\\.0\\.0\\.1:${port} does not answer for bucket strata-cloudsnaps`,
          ),
        },
      ];
      for (const { args, code, message } of cases) {
        const outcome = await up(...args);
        expect({ args, code: outcome.code }).toEqual({ args, code });
        expect(oneSentence(outcome), args.join(" ")).toMatch(message);
      }
      expect(await readCluster(badDir)).toBeUndefined();
      expect(await processesMentioning(badDir)).toEqual([]);
    } finally {
      await rm(badDir, { recursive: true, force: true });
    }
  });

  it("says in one sentence why an agent could not start, and leaves no cluster.json", async () => {
    const squatter = createServer();
    const port = await new Promise<number>((resolve) =>
      squatter.listen(0, "127.0.0.1", () => resolve((squatter.address() as { port: number }).port)),
    );
    const busyDir = await mkdtemp(join(tmpdir(), "strata-cli-"));
    try {
      const outcome = await strata([
        "cluster",
        "up",
        "--dir",
        busyDir,
        "--api-port",
        String(port),
        "--nbd-port",
        "0",
        "--nodes",
        "1",
      ]);
      expect(outcome.code).toBe(1);
      expect(oneSentence(outcome)).toMatch(
        new RegExp(
          `^node-1: the agent stopped before it was ready \\(exit code 1\\): .*EADDRINUSE.*127\\.0\\.0\\.1:${port}`,
        ),
      );
      expect(await readCluster(busyDir)).toBeUndefined();
    } finally {
      squatter.close();
      await rm(busyDir, { recursive: true, force: true });
    }
  });
});
