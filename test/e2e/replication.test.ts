import { setTimeout as sleep } from "node:timers/promises";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Volume } from "../../core/model.js";
import type { Operation } from "../../core/operations.js";
import {
  clusterCli,
  clusterUp,
  FAST_RECOVERY_ENV,
  prepareClusterDir,
  type RunningCluster,
  tearDownCluster,
} from "../cli/strata-process.js";
import { DurableWriter } from "../support/durable-writer.js";
import { eventually } from "../support/eventually.js";
import { fio } from "../support/fio.js";
import { run as runClient } from "../support/run.js";
import { replicaDigests as digestsOf, replicaClientOf } from "./replica-digests.js";

/**
 * Replication as an operator meets it: `strata cluster up` (three agents in three zones), volumes
 * created with --repl, nodes killed with `strata node stop --kill` while fio and qemu-io write.
 */

const MiB = 1024 * 1024;
const env = FAST_RECOVERY_ENV;
let dir: string;
let cluster: RunningCluster | undefined;
const { cli, json } = clusterCli(() => dir, env);
/** Asked of `node` (default: the first node), so it works while another node is down. */
const inspect = (volume: string, node = "node-1") =>
  json<Volume>("--node", node, "volume", "inspect", volume);
const replicaStates = async (volume: string) =>
  Object.fromEntries((await inspect(volume)).replicas.map((replica) => [replica.node, replica.state]));

/** Every replica's bytes, read over the replication protocol from its own node. */
const replicaDigests = (volume: Volume) => digestsOf(dir, cluster!.file, volume);

beforeAll(async () => {
  dir = await prepareClusterDir("strata-replication-");
  // The supervisor and its agents inherit these: placement and status treat a node silent this
  // long as down, and coordinators checkpoint this often.
  Object.assign(process.env, env);
  cluster = await clusterUp(dir);
});

afterAll(() => tearDownCluster(dir, cluster));

describe("replicated volumes on a three-zone local cluster", () => {
  it("places RF3 on three zones, survives kill -9 of a replica's node under load, and brings it back in sync", async () => {
    const created = await json<Volume>("volume", "create", "db", "--size", "256MiB", "--repl", "3");
    expect(created.replicas.map((replica) => replica.node).sort()).toEqual(["node-1", "node-2", "node-3"]);
    expect(created.replicas.map((replica) => replica.zone).sort()).toEqual(["local-a", "local-b", "local-c"]);
    const attachment = await json<{ nbdUri: string }>("volume", "attach", "db");
    const epochBefore = (await inspect("db")).epoch;

    // fio writes and then verifies every block; node-3 dies in the middle of the writes.
    const load = fio(attachment.nbdUri, [
      "--rw=randwrite",
      "--bs=4k",
      "--iodepth=16",
      "--size=128m",
      "--verify=crc32c",
      "--verify_fatal=1",
      "--do_verify=1",
    ]);
    await eventually(async () => (await inspect("db")).allocatedBytes > 16 * MiB, "fio to write 16 MiB");
    const stopped = await cli("node", "stop", "node-3", "--kill");
    expect(stopped.code).toBe(0);
    const result = await load;
    expect(result.error).toBe(0);
    expect(result.read.io_bytes).toBe(128 * MiB);

    const degraded = await inspect("db");
    expect(await replicaStates("db")).toEqual({
      "node-1": "in-sync",
      "node-2": "in-sync",
      "node-3": "failed",
    });
    expect(degraded.epoch).toBeGreaterThan(epochBefore);

    expect((await cli("node", "start", "node-3")).code).toBe(0);
    const healed = await json<Volume>("volume", "ha-update", "db", "--repl", "3");
    expect(Object.fromEntries(healed.replicas.map((replica) => [replica.node, replica.state]))).toEqual({
      "node-1": "in-sync",
      "node-2": "in-sync",
      "node-3": "in-sync",
    });
    const digests = await replicaDigests(healed);
    expect(digests.size).toBe(3);
    expect(new Set(digests.values()).size).toBe(1);

    // A snapshot of the healed volume is taken on all three replicas and listed once.
    await json("snapshot", "create", "db", "--name", "after-rebuild");
    const listed = await json<{ snapshots: { name: string }[] }>("snapshot", "list", "db");
    expect(listed.snapshots.map((snapshot) => snapshot.name)).toEqual(["after-rebuild"]);
    const again = await cli("snapshot", "create", "db", "--name", "after-rebuild");
    expect(again.code).toBe(1);
    expect(again.stderr).toMatch(/already exists/);

    // Revert, resize and snapshot delete reach every replica.
    const uri = (await json<{ nbdUri: string }>("volume", "attach", "db")).nbdUri;
    await runClient("qemu-io", ["-f", "raw", uri, "-c", "write -P 0xaa 0 1M"]);
    await json("snapshot", "create", "db", "--name", "before-upgrade");
    await runClient("qemu-io", ["-f", "raw", uri, "-c", "write -P 0xbb 0 1M"]);
    expect((await cli("snapshot", "revert", "db@before-upgrade")).code).toBe(0);
    await runClient("qemu-io", ["-f", "raw", uri, "-c", "read -P 0xaa 0 1M"]);
    const grown = await json<Volume>("volume", "resize", "db", "--size", "512MiB");
    expect(grown.sizeBytes).toBe(512 * MiB);
    await runClient("qemu-io", [
      "-f",
      "raw",
      uri,
      "-c",
      "write -P 0xcc 400M 1M",
      "-c",
      "read -P 0xcc 400M 1M",
    ]);
    expect((await cli("snapshot", "delete", "db@after-rebuild")).code).toBe(0);
    const left = await json<{ snapshots: { name: string }[] }>("snapshot", "list", "db");
    expect(left.snapshots.map((snapshot) => snapshot.name)).toEqual(["before-upgrade"]);
    const shrink = await cli("volume", "resize", "db", "--size", "256MiB");
    expect(shrink.code).toBe(1);
    expect(shrink.stderr).toMatch(/cannot shrink volume "db" from 512 MiB to 256 MiB/);
    const after = await inspect("db");
    expect(new Set((await replicaDigests(after)).values()).size).toBe(1);

    // A clone is a new replicated volume holding the snapshot's view, listed once complete.
    const clone = await json<Volume>("snapshot", "clone", "db@before-upgrade", "--to", "db-copy");
    expect(clone.sizeBytes).toBe(256 * MiB);
    expect(clone.replicas.map((replica) => replica.zone).sort()).toEqual(["local-a", "local-b", "local-c"]);
    expect(new Set((await replicaDigests(clone)).values()).size).toBe(1);
    const copyUri = (await json<{ nbdUri: string }>("volume", "attach", "db-copy")).nbdUri;
    await runClient("qemu-io", ["-f", "raw", copyUri, "-c", "read -P 0xaa 0 1M"]);
    expect((await cli("volume", "detach", "db-copy")).code).toBe(0);
    expect((await cli("volume", "delete", "db-copy")).code).toBe(0);
  });

  it("moves the volume to another node after kill -9 of its coordinator, with every durable write", async () => {
    await json<Volume>("volume", "create", "logs", "--size", "64MiB", "--repl", "2");
    const holders = (await inspect("logs")).replicas.map((replica) => replica.node);
    const first = holders[0]!;
    const second = holders[1]!;
    const attachment = await json<{ nbdUri: string }>("--node", first, "volume", "attach", "logs");

    const writer = new DurableWriter(attachment.nbdUri, 400);
    await writer.reached(100);
    expect((await cli("node", "stop", first, "--kill")).code).toBe(0);
    await writer.exited;

    const moved = await json<{ nbdUri: string; node: string }>("--node", second, "volume", "attach", "logs");
    expect(moved.node).toBe(second);
    expect((await inspect("logs", second)).attachedNode).toBe(second);
    await runClient("qemu-io", ["-f", "raw", moved.nbdUri, ...writer.verifyCommands()]);
    expect((await cli("node", "start", first)).code).toBe(0);
  });

  it("resyncs a replica whose node comes back with its data, copying only what changed, with no operator", async () => {
    const created = await json<Volume>("volume", "create", "orders", "--size", "256MiB", "--repl", "3");
    const attachment = await json<{ nbdUri: string }>("--node", "node-1", "volume", "attach", "orders");
    const written = await fio(attachment.nbdUri, ["--rw=write", "--bs=1m", "--size=64m", "--iodepth=4"]);
    expect(written.error).toBe(0);
    // The coordinator checkpoints while writes go on and once after they stop; when the epoch holds
    // still for two intervals, the data above is older than node-2's epoch.
    for (let epoch = -1; ; ) {
      const now = (await inspect("orders")).epoch;
      if (now === epoch) break;
      epoch = now;
      await sleep(5000);
    }

    expect((await cli("node", "stop", "node-2", "--kill")).code).toBe(0);
    // Before its heartbeat times out node-2 still looks up; a create that picks it is placed
    // again without it, or refused with the reason when that leaves too few nodes.
    const pair = await json<Volume>("volume", "create", "pair", "--size", "16MiB", "--repl", "2");
    expect(pair.replicas.map((replica) => replica.node).sort()).toEqual(["node-1", "node-3"]);
    const trio = await cli("volume", "create", "trio", "--size", "16MiB", "--repl", "3");
    expect(trio.code).toBe(1);
    expect(trio.stderr).toMatch(
      /needs 3 nodes with room for 16 MiB; 2 qualify: .*node-2: (down|no heartbeat)/,
    );
    expect((await cli("volume", "delete", "pair")).code).toBe(0);

    const away = await fio(attachment.nbdUri, ["--rw=write", "--bs=64k", "--offset=128m", "--size=4m"]);
    expect(away.error).toBe(0);
    expect(await replicaStates("orders")).toMatchObject({ "node-2": "failed" });

    // Back with its data: the coordinator notices and resyncs it, no ha-update needed.
    expect((await cli("node", "start", "node-2")).code).toBe(0);
    await eventually(
      async () => Object.values(await replicaStates("orders")).every((state) => state === "in-sync"),
      "node-2's replica to be resynced",
      60_000,
    );
    const metrics = await (await fetch(`${cluster!.file.nodes[0]!.apiUrl}/metrics`)).text();
    const resynced = Number(
      metrics
        .split("\n")
        .find(
          (line) =>
            line.startsWith("strata_replica_copied_bytes_total{") &&
            line.includes(`volume="${created.id}"`) &&
            line.includes('kind="resync"'),
        )
        ?.split(" ")
        .at(-1),
    );
    // The 4 MiB written while it was away, not the 68 MiB the volume holds.
    expect(resynced).toBe(4 * MiB);
    const digests = await replicaDigests(await inspect("orders"));
    expect(new Set(digests.values()).size).toBe(1);
    // The resync was an operation the cluster started for itself, run by the attached node and shown
    // to the operator: the coordinator's own resync, or, when node-2's heartbeat timed out first
    // (a loaded machine), node-loss's repair of the volume, which copied the same 4 MiB.
    const { operations } = await json<{ operations: Operation[] }>("operation", "list", "--volume", "orders");
    const nodeTwo = created.replicas.find((replica) => replica.node === "node-2")!.replicaId;
    expect(
      operations.filter(
        (operation) =>
          operation.node === "node-1" &&
          operation.state === "succeeded" &&
          ((operation.kind === "resync" && operation.params["replicaId"] === nodeTwo) ||
            (operation.kind === "repair" && operation.progress?.bytesDone === 4 * MiB)),
      ),
    ).not.toEqual([]);

    // Lowering the count drops a replica online (never the coordinator's own); raising it again
    // rebuilds one, and the record keeps the count the operator asked for.
    const lowered = await json<Volume>("volume", "ha-update", "orders", "--repl", "2");
    expect(lowered.replicas).toHaveLength(2);
    expect(lowered.replicas.map((replica) => replica.node)).toContain("node-1");
    const raised = await json<Volume>("volume", "ha-update", "orders", "--repl", "3");
    expect(raised.replicas.map((replica) => replica.state)).toEqual(["in-sync", "in-sync", "in-sync"]);
    expect(new Set((await replicaDigests(raised)).values()).size).toBe(1);
    expect((await cli("volume", "detach", "orders")).code).toBe(0);
  });

  it("a node that was away when its volume was deleted deletes the leftover replica itself", async () => {
    const created = await json<Volume>("volume", "create", "scratch", "--size", "16MiB", "--repl", "3");
    expect((await cli("node", "stop", "node-3")).code).toBe(0);
    expect((await cli("volume", "delete", "scratch")).code).toBe(0);
    expect((await cli("node", "start", "node-3")).code).toBe(0);
    const holds = async () => {
      const client = await replicaClientOf(dir, cluster!.file, "node-3");
      try {
        return (await client.listReplicas(created.id)).length > 0;
      } finally {
        await client.close();
      }
    };
    expect(await holds()).toBe(true);
    await eventually(async () => !(await holds()), "node-3 to delete the orphaned replica", 60_000);
  });

  it("explains a placement it cannot make", async () => {
    const refused = await cli("volume", "create", "huge", "--size", "64TiB", "--repl", "3");
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(/needs 3 nodes with room for 64 TiB; 0 qualify/);
    // Thin volumes over-commit a node up to a limit, the same for every replication factor, and
    // the refusal names each node's provisioned bytes and its limit.
    const big = await cli("volume", "create", "big1", "--size", "17TiB", "--repl", "2");
    expect(big.code).toBe(1);
    expect(big.stderr).toMatch(
      /^error: needs 2 nodes with room for 17 TiB; 0 qualify; node-1: (its filesystem holds only files smaller than [\d.]+ [GT]iB, )?[\d.]+ [KMGT]?i?B provisioned of [\d.]+ [GT]iB allowed \(200% of [\d.]+ [GT]iB\)/,
    );
  });
});
