import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { useLocalAws } from "../../core/local-aws-environment.js";
import type { Volume } from "../../core/model.js";
import { StateStore } from "../../core/state/store.js";
import {
  clusterCli,
  clusterUp,
  FAST_RECOVERY_ENV,
  oneSentence,
  prepareClusterDir,
  type RunningCluster,
  tearDownCluster,
} from "../cli/strata-process.js";
import { eventually } from "../support/eventually.js";
import { fio } from "../support/fio.js";
import { run } from "../support/run.js";

/**
 * One volume service for every replication factor, as an operator meets it on a three-zone local
 * cluster: a single-replica volume is a cluster volume (a record, an epoch, an attachment on any
 * node), its replica count changes online, volumes attached nowhere are changed and repaired
 * through maintenance attachments, and moving an attachment back and forth leaves no stale export.
 */

const MiB = 1024 * 1024;

let dir: string;
let cluster: RunningCluster | undefined;
let store: StateStore;
const { cli, json } = clusterCli(() => dir, FAST_RECOVERY_ENV);
const inspect = (volume: string, node = "node-1") =>
  json<Volume>("--node", node, "volume", "inspect", volume);
const states = (volume: Volume) =>
  Object.fromEntries(volume.replicas.map((replica) => [replica.node, replica.state]));
/** The export names `node`'s NBD server lists. */
async function exportsOf(node: string): Promise<string[]> {
  const address = cluster!.file.nodes.find((entry) => entry.id === node)!.nbdAddress;
  const listed = JSON.parse(await run("nbdinfo", ["--list", "--json", `nbd://${address}`])) as {
    exports: { "export-name": string }[];
  };
  return listed.exports.map((entry) => entry["export-name"]);
}

beforeAll(async () => {
  dir = await prepareClusterDir("strata-every-volume-");
  Object.assign(process.env, FAST_RECOVERY_ENV);
  cluster = await clusterUp(dir);
  useLocalAws(cluster.file.dynamodb.endpoint);
  store = new StateStore({ tableName: cluster.file.dynamodb.table });
});

afterAll(async () => {
  store?.close();
  await tearDownCluster(dir, cluster);
});

describe("every volume is a cluster volume", () => {
  it("keeps a single-replica volume in the cluster state, attachable on any node, snapshotted detached", async () => {
    const created = await json<Volume>("--node", "node-2", "volume", "create", "solo", "--size", "64MiB");
    expect(created.replicas.map((replica) => replica.node)).toEqual(["node-2"]);
    // Every node sees it: its record is in the state table.
    const status = await json<{ volumes: { name: string; replicas: { node: string }[] }[] }>(
      "cluster",
      "status",
    );
    expect(status.volumes.find((volume) => volume.name === "solo")?.replicas.map((r) => r.node)).toEqual([
      "node-2",
    ]);
    expect((await inspect("solo", "node-3")).replicas.map((replica) => replica.node)).toEqual(["node-2"]);

    // Attached on node-1, its replica on node-2: I/O crosses the replication protocol.
    const uri = (await json<{ nbdUri: string }>("volume", "attach", "solo")).nbdUri;
    await run("qemu-io", ["-f", "raw", uri, "-c", "write -P 0x5a 0 4M"]);
    expect((await cli("volume", "detach", "solo")).code).toBe(0);

    // Detached, it is still snapshotted, on its replica, and stays detached.
    const epoch = (await inspect("solo")).epoch;
    await json("snapshot", "create", "solo", "--name", "cold");
    const after = await inspect("solo");
    expect(after.attachedNode).toBeNull();
    expect(after.epoch).toBeGreaterThan(epoch);
    expect(after.snapshotCount).toBe(0); // node-1 holds no replica of it; node-2 does
    expect((await inspect("solo", "node-2")).snapshotCount).toBe(1);
  });

  it("raises a single-replica volume to three replicas and back to one under a verified write load", async () => {
    await json("volume", "create", "grow", "--size", "256MiB");
    const uri = (await json<{ nbdUri: string }>("volume", "attach", "grow")).nbdUri;
    const load = fio(uri, [
      "--rw=randwrite",
      "--bs=4k",
      "--iodepth=16",
      "--size=96m",
      "--verify=crc32c",
      "--verify_fatal=1",
      "--do_verify=1",
    ]);
    await eventually(async () => (await inspect("grow")).allocatedBytes > 8 * MiB, "fio to write 8 MiB");
    const three = await json<Volume>("volume", "ha-update", "grow", "--repl", "3");
    expect(states(three)).toEqual({ "node-1": "in-sync", "node-2": "in-sync", "node-3": "in-sync" });
    const one = await json<Volume>("volume", "ha-update", "grow", "--repl", "1");
    // The local replica serves reads, so it is the one kept.
    expect(states(one)).toEqual({ "node-1": "in-sync" });
    const result = await load;
    expect(result.error).toBe(0);
    expect(result.read.io_bytes).toBe(96 * MiB);
    expect((await inspect("grow")).replicas).toHaveLength(1);
  });

  it("moves an attachment to another node and back, leaving no stale export and no false success", async () => {
    await json("volume", "create", "moving", "--size", "64MiB", "--repl", "2");
    const first = (await json<{ nbdUri: string }>("volume", "attach", "moving")).nbdUri;
    await run("qemu-io", ["-f", "raw", first, "-c", "write -P 0x11 0 1M"]);

    const second = await json<{ node: string; nbdUri: string }>(
      "--node",
      "node-2",
      "volume",
      "attach",
      "moving",
    );
    expect(second.node).toBe("node-2");
    expect((await inspect("moving")).attachedNode).toBe("node-2");
    // node-1 was fenced: it drops its export instead of serving EPERM.
    await eventually(
      async () => !(await exportsOf("node-1")).includes("moving"),
      "node-1 to drop its export",
    );
    const elsewhere = await cli("volume", "detach", "moving");
    expect(elsewhere.code).toBe(1);
    expect(oneSentence(elsewhere)).toMatch(/attached to node-2.*--node node-2/);
    await run("qemu-io", ["-f", "raw", second.nbdUri, "-c", "write -P 0x22 1M 1M"]);

    // And back: node-1 takes the volume again, for real.
    const back = await json<{ node: string; nbdUri: string }>("volume", "attach", "moving");
    expect(back.node).toBe("node-1");
    expect((await inspect("moving")).attachedNode).toBe("node-1");
    await run("qemu-io", ["-f", "raw", back.nbdUri, "-c", "read -P 0x11 0 1M", "-c", "read -P 0x22 1M 1M"]);
    await eventually(
      async () => !(await exportsOf("node-2")).includes("moving"),
      "node-2 to drop its export",
    );
    await json("snapshot", "create", "moving", "--name", "after-move");
    expect((await cli("volume", "detach", "moving")).code).toBe(0);
    expect((await inspect("moving")).attachedNode).toBeNull();
    expect(await exportsOf("node-1")).not.toContain("moving");
    expect(await exportsOf("node-2")).not.toContain("moving");
  });

  it("releases a maintenance attachment a crash cut short instead of exporting the volume", async () => {
    await json("volume", "create", "chores", "--size", "64MiB", "--repl", "2");
    expect((await cli("node", "stop", "node-1", "--kill")).code).toBe(0);
    // What a kill -9 in the middle of a snapshot of a volume attached nowhere leaves in the record.
    const volume = await store.volumes.getByName("chores");
    await store.volumes.updateIfEpoch(volume.id, volume.epoch, { attachedNode: "node-1", maintenance: true });
    expect((await cli("node", "start", "node-1")).code).toBe(0);
    await eventually(async () => (await inspect("chores")).attachedNode === null, "node-1 to release it");
    expect(await exportsOf("node-1")).not.toContain("chores");
    expect((await store.volumes.getByName("chores")).maintenance).toBe(false);
  });

  it("says a volume that does not exist is not found, whatever the command", async () => {
    for (const args of [
      ["snapshot", "create", "nonexistent"],
      ["snapshot", "delete", "nonexistent@s"],
      ["volume", "resize", "nonexistent", "--size", "1GiB"],
      ["volume", "ha-update", "nonexistent", "--repl", "2"],
    ]) {
      const outcome = await cli(...args);
      expect(outcome.code, args.join(" ")).toBe(1);
      expect(oneSentence(outcome), args.join(" ")).toMatch(/volume "nonexistent" not found/);
    }
  });

  it("repairs a detached volume whose replica's node was lost through an operation, with no attach by the user", async () => {
    await json("volume", "create", "idle", "--size", "64MiB", "--repl", "2");
    const uri = (await json<{ nbdUri: string }>("volume", "attach", "idle")).nbdUri;
    await run("qemu-io", ["-f", "raw", uri, "-c", "write -P 0x33 0 8M", "-c", "flush"]);
    expect((await cli("volume", "detach", "idle")).code).toBe(0);
    const lost = (await inspect("idle")).replicas.find((replica) => replica.node !== "node-1")!.node;
    expect((await cli("node", "stop", lost, "--kill")).code).toBe(0);
    await eventually(
      async () =>
        (await json<{ nodes: { id: string; state: string }[] }>("cluster", "status")).nodes.find(
          (node) => node.id === lost,
        )?.state === "down",
      `${lost} to be seen down`,
    );
    try {
      // The workflows' path: a repair written to the state table for a node holding an in-sync replica.
      const volume = await store.volumes.getByName("idle");
      const repair = await store.operations.start({
        requestToken: "node-loss-idle",
        kind: "repair",
        volumeId: volume.id,
        volumeName: volume.name,
        node: "node-1",
      });
      await eventually(
        async () => (await store.operations.get(repair.id)).state === "succeeded",
        "the repair to succeed",
      );
      const repaired = await inspect("idle");
      const live = repaired.replicas.filter((replica) => replica.state === "in-sync");
      expect(live.map((replica) => replica.node).sort()).not.toContain(lost);
      expect(live).toHaveLength(2);
      expect(repaired.attachedNode).toBeNull();
      const reattached = (await json<{ nbdUri: string }>("volume", "attach", "idle")).nbdUri;
      await run("qemu-io", ["-f", "raw", reattached, "-c", "read -P 0x33 0 8M"]);
      expect((await cli("volume", "detach", "idle")).code).toBe(0);
    } finally {
      expect((await cli("node", "start", lost)).code).toBe(0);
    }
  });
});
