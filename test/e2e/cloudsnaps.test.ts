import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Cloudsnap } from "../../core/cloudsnaps.js";
import type { Volume } from "../../core/model.js";
import type { Operation } from "../../core/operations.js";
import {
  clusterCli,
  clusterUp,
  oneSentence,
  prepareClusterDir,
  type RunningCluster,
  tearDownCluster,
} from "../cli/strata-process.js";
import { run } from "../support/run.js";
import { replicaDigests } from "./replica-digests.js";

/**
 * Cloudsnaps as an operator takes and restores them: real agents read the snapshot through their
 * coordinators, upload to the local cluster's S3-compatible server, and a second cluster given
 * only that bucket and the passphrase restores them. Volumes are compared by the SHA-256 of every
 * replica's bytes.
 */

const MiB = 1024 * 1024;
let dirA: string;
let dirB: string;
let clusterA: RunningCluster | undefined;
let clusterB: RunningCluster | undefined;
const a = clusterCli(() => dirA);
const b = clusterCli(() => dirB);

/** The one digest all of a volume's replicas share (they must agree). */
async function digestOf(dir: string, cluster: RunningCluster, volume: Volume): Promise<string> {
  const digests = new Set((await replicaDigests(dir, cluster.file, volume)).values());
  expect(digests.size).toBe(1);
  return [...digests][0]!;
}

beforeAll(async () => {
  dirA = await prepareClusterDir("strata-cloudsnaps-a-");
  dirB = await prepareClusterDir("strata-cloudsnaps-b-");
  clusterA = await clusterUp(dirA, ["--nodes", "3", "--zones", "3"]);
}, 180_000);

afterAll(async () => {
  await tearDownCluster(dirB, clusterB);
  await tearDownCluster(dirA, clusterA);
}, 60_000);

describe("cloudsnaps", () => {
  let volume: Volume;
  let nbdUri: string;
  const taken: { cloudsnap: Cloudsnap; digest: string }[] = [];

  const write = (...commands: string[]) =>
    run("qemu-io", ["-f", "raw", nbdUri, ...commands.flatMap((command) => ["-c", command])]);
  const take = async () => {
    const digest = await digestOf(dirA, clusterA!, volume);
    const cloudsnap = await a.json<Cloudsnap>("cloudsnap", "create", "db", "--wait");
    taken.push({ cloudsnap, digest });
    return cloudsnap;
  };

  it("uploads a volume in full, then only what changed, and restores each byte for byte", async () => {
    volume = await a.json<Volume>("volume", "create", "db", "--size", "64MiB", "--repl", "2");
    nbdUri = (await a.json<{ nbdUri: string }>("volume", "attach", "db")).nbdUri;
    await write(`write -P 0x11 0 ${8 * MiB}`, `write -P 0x12 ${30 * MiB} ${3 * MiB}`);
    const full = await take();
    expect(full).toMatchObject({ incremental: false, chunks: 11, volumeName: "db", replicationFactor: 2 });

    await write(
      `write -P 0x21 ${MiB} 8192`,
      `write -z ${30 * MiB} ${MiB}`,
      `write -P 0x22 ${50 * MiB} ${MiB}`,
    );
    const incremental = await take();
    expect(incremental).toMatchObject({ incremental: true, newChunks: 2 });
    // What changed (three chunks) is read, not the volume.
    expect(incremental.scannedBytes).toBe(3 * MiB);
    expect(incremental.uploadedBytes).toBeLessThan(2.1 * MiB);

    // The first cloudsnap's snapshot went once the second was up; the second's stays as the next base.
    const snapshots = await a.json<{ snapshots: { name: string }[] }>("snapshot", "list", "db");
    expect(snapshots.snapshots.map((s) => s.name)).toEqual([`cloudsnap-${incremental.id.slice(37)}`]);

    const listed = await a.json<{ cloudsnaps: Cloudsnap[] }>("cloudsnap", "list", "db");
    expect(listed.cloudsnaps.map((c) => c.id)).toEqual([full.id, incremental.id]);
    const shown = await a.cli("cloudsnap", "show", full.id);
    expect(shown.stdout).toMatch(/Uploaded:\s+\d/);

    for (const [i, { cloudsnap, digest }] of taken.entries()) {
      const restored = await a.json<Volume>(
        "cloudsnap",
        "restore",
        cloudsnap.id,
        "--to",
        `db-${i}`,
        "--wait",
      );
      expect(restored.replicas).toHaveLength(2);
      expect(await digestOf(dirA, clusterA!, restored)).toBe(digest);
    }
  }, 240_000);

  it("refuses a restore into an existing name and an id that is not a cloudsnap's, in one sentence", async () => {
    const existing = await a.cli("cloudsnap", "restore", taken[0]!.cloudsnap.id, "--to", "db");
    expect(existing.code).toBe(1);
    expect(oneSentence(existing)).toBe('volume "db" already exists: restore into a new name');
    // As the restore workflow, the refusal is check-restore's own sentence, not the Fail state's summary.
    const byWorkflow = await a.cli(
      "cloudsnap",
      "restore",
      taken[0]!.cloudsnap.id,
      "--to",
      "db",
      "--workflow",
      "--wait",
    );
    expect(byWorkflow.code).toBe(1);
    expect(oneSentence(byWorkflow)).toMatch(
      /^the restore workflow restore-db-\d{8}T\d{6}Z failed: volume "db" already exists: restore into a new name$/,
    );
    const malformed = await a.cli("cloudsnap", "show", "db-backup");
    expect(malformed.code).toBe(1);
    expect(oneSentence(malformed)).toContain('"db-backup" is not a cloudsnap id');
    const missing = await a.cli("cloudsnap", "show", `${volume.id}-20990101T000000000Z`);
    expect(oneSentence(missing)).toContain("not found");
    // A restore whose cloudsnap does not exist fails as an operation and leaves no volume.
    const failed = await a.cli(
      "cloudsnap",
      "restore",
      `${volume.id}-20990101T000000000Z`,
      "--to",
      "ghost",
      "--wait",
    );
    expect(failed.code).toBe(1);
    // Progress lines come first (stderr is not a terminal here), then the one error.
    expect(failed.stderr.trimEnd().split("\n").at(-1)).toMatch(
      /^error: restore of ghost on node-\d failed: cloudsnap .* not found$/,
    );
    expect((await a.cli("volume", "inspect", "ghost")).code).toBe(1);
    // Placed like a new volume: a selector no node matches refuses it, saying why, before any download.
    const unplaced = await a.cli(
      "cloudsnap",
      "restore",
      taken[0]!.cloudsnap.id,
      "--to",
      "gold",
      "--selector",
      "tier=gold",
      "--wait",
    );
    expect(unplaced.code).toBe(1);
    expect(unplaced.stderr).toMatch(/needs 2 nodes with room for 64 MiB and label tier=gold; 0 qualify/);
    expect((await a.cli("volume", "inspect", "gold")).code).toBe(1);
  }, 120_000);

  it("restores into another cluster that has only the bucket and the passphrase, through its restore workflow", async () => {
    const endpoint = clusterA!.file.cloud?.endpoints["AWS_ENDPOINT_URL_S3"];
    expect(endpoint).toBeDefined();
    clusterB = await clusterUp(dirB, [
      "--nodes",
      "2",
      "--zones",
      "2",
      "--s3-endpoint",
      endpoint!,
      "--cloudsnap-passphrase-file",
      join(dirA, "cloudsnap-passphrase"),
    ]);
    // The volume is not B's: it is named by its id, and its catalog found without a LIST.
    const listed = await b.json<{ cloudsnaps: Cloudsnap[] }>("cloudsnap", "list", volume.id);
    expect(listed.cloudsnaps.map((c) => c.id)).toEqual(taken.map((t) => t.cloudsnap.id));
    const latest = taken.at(-1)!;
    const restored = await b.json<Volume>(
      "cloudsnap",
      "restore",
      latest.cloudsnap.id,
      "--to",
      "db",
      "--repl",
      "2",
      "--workflow",
      "--wait",
    );
    expect(await digestOf(dirB, clusterB, restored)).toBe(latest.digest);
    const executions = await b.json<{ executions: { name: string; status: string }[] }>(
      "workflow",
      "list",
      "--workflow",
      "restore",
    );
    expect(executions.executions).toEqual([
      expect.objectContaining({ name: expect.stringMatching(/^restore-db-/), status: "SUCCEEDED" }),
    ]);
  }, 240_000);

  it("deletes a cloudsnap and keeps what the others need", async () => {
    const [first, second] = taken;
    const deleted = await a.json<Cloudsnap>("cloudsnap", "delete", first!.cloudsnap.id);
    expect(deleted.id).toBe(first!.cloudsnap.id);
    const listed = await a.json<{ cloudsnaps: Cloudsnap[] }>("cloudsnap", "list", "db");
    expect(listed.cloudsnaps.map((c) => c.id)).toEqual([second!.cloudsnap.id]);
    const restored = await a.json<Volume>(
      "cloudsnap",
      "restore",
      second!.cloudsnap.id,
      "--to",
      "db-again",
      "--wait",
    );
    expect(await digestOf(dirA, clusterA!, restored)).toBe(second!.digest);
    const operations = await a.json<{ operations: Operation[] }>("operation", "list", "--volume", "db-again");
    expect(operations.operations.map((o) => [o.kind, o.state, o.result?.["cloudsnap"]])).toEqual([
      ["restore", "succeeded", second!.cloudsnap.id],
    ]);
  }, 240_000);

  it("takes a group at one point of its volumes' write streams, between hooks, and aborts cleanly on a failed hook", async () => {
    const digests = new Map<string, string>();
    for (const name of ["pg-main", "pg-wal"]) {
      const created = await a.json<Volume>("volume", "create", name, "--size", "16MiB", "--repl", "2");
      const uri = (await a.json<{ nbdUri: string }>("volume", "attach", name)).nbdUri;
      await run("qemu-io", [
        "-f",
        "raw",
        uri,
        "-c",
        `write -P 0x${name === "pg-wal" ? "77" : "66"} 0 ${2 * MiB}`,
      ]);
      digests.set(name, await digestOf(dirA, clusterA!, created));
    }
    const marks = join(dirA, "hook-marks");
    const taken = await a.json<{ cloudsnaps: Cloudsnap[] }>(
      "cloudsnap",
      "create",
      "pg-main",
      "pg-wal",
      "--group",
      "pg",
      "--pre-hook",
      `echo flushed >> ${marks}`,
      "--post-hook",
      `echo resumed >> ${marks}`,
      "--wait",
    );
    expect(taken.cloudsnaps.map((c) => c.volumeName)).toEqual(["pg-main", "pg-wal"]);
    const [group] = new Set(taken.cloudsnaps.map((c) => c.group));
    expect(group).toMatch(/^pg@\d{8}T\d{9}Z$/);
    expect(taken.cloudsnaps.every((c) => c.group === group)).toBe(true);
    expect((await readFile(marks, "utf8")).split("\n")).toEqual(["flushed", "resumed", ""]);
    for (const cloudsnap of taken.cloudsnaps) {
      const target = `${cloudsnap.volumeName}-restored`;
      const restored = await a.json<Volume>("cloudsnap", "restore", cloudsnap.id, "--to", target, "--wait");
      expect(await digestOf(dirA, clusterA!, restored)).toBe(digests.get(cloudsnap.volumeName));
    }

    // A pre hook that fails: nothing is snapshotted, the post hook still runs, nothing new is listed.
    const failed = await a.cli(
      "cloudsnap",
      "create",
      "pg-main",
      "pg-wal",
      "--pre-hook",
      "echo cannot flush >&2; exit 3",
      "--post-hook",
      `echo resumed >> ${marks}`,
      "--wait",
    );
    expect(failed.code).toBe(1);
    expect(failed.stderr).toContain(
      "the pre hook `echo cannot flush >&2; exit 3` exited with 3: cannot flush",
    );
    expect((await readFile(marks, "utf8")).split("\n")).toEqual(["flushed", "resumed", "resumed", ""]);
    for (const name of ["pg-main", "pg-wal"]) {
      const listed = await a.json<{ cloudsnaps: Cloudsnap[] }>("cloudsnap", "list", name);
      expect(listed.cloudsnaps.map((c) => c.id)).toEqual([
        taken.cloudsnaps.find((c) => c.volumeName === name)!.id,
      ]);
      const snapshots = await a.json<{ snapshots: { name: string }[] }>("snapshot", "list", name);
      expect(snapshots.snapshots).toHaveLength(1);
    }

    // A group's volumes must be attached to one node (or none): a database's are.
    await a.json<Volume>("--node", "node-2", "volume", "create", "elsewhere", "--size", "16MiB");
    await a.json("--node", "node-2", "volume", "attach", "elsewhere");
    const split = await a.cli("cloudsnap", "create", "pg-main", "elsewhere", "--wait");
    expect(split.code).toBe(1);
    expect(split.stderr).toContain('volume "elsewhere" is attached to node-2');
  }, 240_000);
});
