/**
 * Replica management frames against an in-process replica server whose admin is a real
 * ReplicaHost on a temp drive: payload checks, fencing of SET_REBUILDING and ALLOCATED_RUNS,
 * paging, and what a bare server (no admin) answers.
 */
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import type { ReplicaHost } from "../../agent/replica-host.js";
import type { ReplicaClient } from "../../agent/replication/client.js";
import { connectReplica } from "../../agent/replication/client.js";
import {
  ReplicaExistsError,
  ReplicaRefusedError,
  StaleEpochError,
  UnknownSnapshotError,
  UnknownVolumeError,
} from "../../agent/replication/errors.js";
import { MAX_RUNS_PER_PAGE } from "../../agent/replication/replica-admin.js";
import { remoteReplicaHandle } from "../../agent/replication/replica-handle.js";
import { type ReplicaServer, startReplicaServer } from "../../agent/replication/server/server.js";
import { FrameType, REPLY_BIT, Status } from "../../agent/replication/wire/protocol.js";
import { openHost, SIZE } from "../replica-host/helpers.js";
import { BLOCK, tempDir } from "../store/helpers.js";
import { CapturedLog, pattern, SECRET, startServer } from "./harness.js";
import { RawPeer, request } from "./raw-peer.js";

describe("replica management over the protocol", () => {
  let dir: { path: string; cleanup: () => Promise<void> };
  let host: ReplicaHost;
  let server: ReplicaServer;
  let client: ReplicaClient;
  const log = new CapturedLog();

  beforeEach(async () => {
    dir = await tempDir();
    host = await openHost(dir.path);
    server = await startReplicaServer({
      host: "127.0.0.1",
      port: 0,
      secret: SECRET,
      resolve: (volumeId) => host.get(volumeId),
      admin: host,
      log: log.logger,
    });
    client = await connectReplica({
      host: "127.0.0.1",
      port: server.address.port,
      secret: SECRET,
      log: log.logger,
    });
  });
  afterEach(async () => {
    await client.close();
    await server.close();
    await host.close();
    await dir.cleanup();
  });

  it("creates, lists and deletes replicas; another replica of the volume is refused", async () => {
    expect(await client.listReplicas()).toEqual([]);
    const spec = { volumeId: "vol-1", replicaId: "rep-1", sizeBytes: SIZE, epoch: 3 };
    expect(await client.createReplica(spec)).toEqual({ ...spec, allocatedBytes: 0, rebuilding: false });
    expect(await client.createReplica(spec)).toMatchObject({ replicaId: "rep-1", epoch: 3 });
    const other = await client.createReplica({ ...spec, replicaId: "rep-2" }).catch((e: unknown) => e);
    expect(other).toBeInstanceOf(ReplicaExistsError);
    expect((other as Error).message).toContain("rep-1");
    await client.createReplica({ ...spec, volumeId: "vol-2", replicaId: "rep-9" });
    expect((await client.listReplicas()).map((r) => r.volumeId).sort()).toEqual(["vol-1", "vol-2"]);
    expect(await client.listReplicas("vol-2")).toEqual([expect.objectContaining({ replicaId: "rep-9" })]);
    expect(await client.deleteReplica("vol-1", "rep-2")).toBe(false);
    expect(await client.deleteReplica("vol-1", "rep-1")).toBe(true);
    expect(await client.deleteReplica("vol-1", "rep-1")).toBe(false);
    expect(host.get("vol-1")).toBeUndefined();
    await expect(client.getState("vol-1")).rejects.toBeInstanceOf(UnknownVolumeError);
  });

  it("fences SET_REBUILDING and ALLOCATED_RUNS by epoch; a rebuilding replica is write-only", async () => {
    await client.createReplica({ volumeId: "vol-1", replicaId: "rep-1", sizeBytes: SIZE, epoch: 2 });
    await expect(client.setRebuilding("vol-1", 1, true)).rejects.toBeInstanceOf(StaleEpochError);
    await client.setRebuilding("vol-1", 2, true);
    await client.write("vol-1", 2, 0, pattern(BLOCK, 1), { fua: false });
    const refusals = await Promise.all([
      client.read("vol-1", 0, BLOCK, { epoch: 2 }).catch((e: unknown) => e),
      client.allocatedRuns("vol-1", { epoch: 2 }).catch((e: unknown) => e),
    ]);
    for (const refusal of refusals) expect(refusal).toMatchObject({ status: Status.NOT_IN_SYNC });
    await client.setRebuilding("vol-1", 2, false);
    expect(await client.allocatedRuns("vol-1", { epoch: 2 })).toEqual([{ offset: 0, length: BLOCK }]);
    await expect(client.allocatedRuns("vol-1", { epoch: 1 })).rejects.toBeInstanceOf(StaleEpochError);
  });

  it("pages allocated runs so a fragmented volume never makes one huge frame", async () => {
    await client.createReplica({ volumeId: "vol-1", replicaId: "rep-1", sizeBytes: SIZE, epoch: 1 });
    const count = MAX_RUNS_PER_PAGE + 100;
    // Every other block: each written block is a run of its own.
    await Promise.all(
      Array.from({ length: count }, (_, i) =>
        client.write("vol-1", 1, 2 * i * BLOCK, pattern(BLOCK, i), { fua: false }),
      ),
    );
    const first = await client.allocatedRunsPage("vol-1", 0);
    expect(first.runs).toHaveLength(MAX_RUNS_PER_PAGE);
    expect(first.next).toBe(2 * (MAX_RUNS_PER_PAGE - 1) * BLOCK + BLOCK);
    const runs = await client.allocatedRuns("vol-1");
    expect(runs).toEqual(Array.from({ length: count }, (_, i) => ({ offset: 2 * i * BLOCK, length: BLOCK })));
    // A page may start inside a run: it is cut there.
    expect((await client.allocatedRunsPage("vol-1", 100)).runs[0]).toEqual([100, BLOCK - 100]);
  });

  it("gives a coordinator's remote handle the source's allocated runs, so a rebuild copies only those", async () => {
    await client.createReplica({ volumeId: "vol-1", replicaId: "rep-1", sizeBytes: SIZE, epoch: 1 });
    await client.write("vol-1", 1, 8 * BLOCK, pattern(2 * BLOCK, 1), { fua: false });
    const handle = remoteReplicaHandle(
      await connectReplica({ host: "127.0.0.1", port: server.address.port, secret: SECRET, log: log.logger }),
      "vol-1",
    );
    try {
      expect(await handle.allocatedRuns(1)).toEqual([{ offset: 8 * BLOCK, length: 2 * BLOCK }]);
      // A stale epoch cannot map the source: the rebuild falls back to reading everything.
      expect(await handle.allocatedRuns(9)).toBeUndefined();
    } finally {
      await handle.close();
    }
  });

  it("fences chain changes by epoch and names a missing snapshot", async () => {
    await client.createReplica({ volumeId: "vol-1", replicaId: "rep-1", sizeBytes: SIZE, epoch: 4 });
    await expect(client.resizeReplica("vol-1", 3, SIZE * 2)).rejects.toBeInstanceOf(StaleEpochError);
    expect(host.get("vol-1")!.sizeBytes).toBe(SIZE);
    await client.resizeReplica("vol-1", 4, SIZE * 2);
    expect((await client.getState("vol-1")).sizeBytes).toBe(SIZE * 2);
    await expect(client.resizeReplica("vol-1", 4, SIZE)).rejects.toThrow(/cannot shrink/);
    const snapshot = await client.snapshot("vol-1", 4, { id: crypto.randomUUID(), name: "s" });
    await expect(client.revertReplica("vol-1", 4, crypto.randomUUID())).rejects.toBeInstanceOf(
      UnknownSnapshotError,
    );
    await expect(client.deleteSnapshot("vol-1", 5, snapshot.id)).rejects.toBeInstanceOf(StaleEpochError);
    await client.deleteSnapshot("vol-1", 4, snapshot.id);
    expect(host.get("vol-1")!.snapshots()).toEqual([]);
    await expect(client.deleteSnapshot("vol-1", 4, snapshot.id)).rejects.toBeInstanceOf(UnknownSnapshotError);

    const peer = await RawPeer.authenticated(server.address.port, SECRET);
    try {
      const malformed: [number, Buffer | undefined][] = [
        [FrameType.CHANGED_RUNS, Buffer.from(JSON.stringify({ since: -1 }))],
        [FrameType.RESIZE_REPLICA, Buffer.from(JSON.stringify({ sizeBytes: "big" }))],
        [FrameType.DELETE_SNAPSHOT, undefined],
        [FrameType.REVERT_REPLICA, Buffer.from(JSON.stringify({ snapshotId: "" }))],
      ];
      for (const [i, [type, payload]] of malformed.entries()) {
        peer.send(request({ type, epoch: 4, requestId: i + 1 }), payload);
      }
      for (let i = 0; i < malformed.length; i++) {
        const reply = await peer.nextFrame();
        expect(reply.status, `case ${reply.requestId}`).toBe(Status.BAD_REQUEST);
      }
    } finally {
      peer.destroy();
    }
    expect(host.get("vol-1")!.sizeBytes).toBe(SIZE * 2);
  });

  it("answers malformed management requests with BAD_REQUEST and creates nothing", async () => {
    const peer = await RawPeer.authenticated(server.address.port, SECRET);
    try {
      const cases: [number, string, Buffer | undefined][] = [
        [FrameType.CREATE_REPLICA, "vol-1", Buffer.from("{not json")],
        [FrameType.CREATE_REPLICA, "vol-1", Buffer.from(JSON.stringify({ replicaId: "r", sizeBytes: -1 }))],
        [FrameType.CREATE_REPLICA, "vol-1", Buffer.from(JSON.stringify({ replicaId: "r", sizeBytes: 1000 }))],
        [
          FrameType.CREATE_REPLICA,
          "../etc",
          Buffer.from(JSON.stringify({ replicaId: "r", sizeBytes: SIZE })),
        ],
        [
          FrameType.CREATE_REPLICA,
          "vol-1",
          Buffer.from(JSON.stringify({ replicaId: "../r", sizeBytes: SIZE })),
        ],
        [FrameType.CREATE_REPLICA, "vol-1", undefined],
        [FrameType.DELETE_REPLICA, "vol-1", Buffer.from("{}")],
        [FrameType.LIST_REPLICAS, "", Buffer.from("{}")],
      ];
      for (const [i, [type, volumeId, payload]] of cases.entries()) {
        peer.send(request({ type, volumeId, requestId: i + 1 }), payload);
      }
      for (let i = 0; i < cases.length; i++) {
        const reply = await peer.nextFrame();
        expect(reply.type).toBe(cases[reply.requestId - 1]![0] | REPLY_BIT);
        expect(reply.status, `case ${reply.requestId}`).toBe(Status.BAD_REQUEST);
      }
    } finally {
      peer.destroy();
    }
    expect(host.list()).toEqual([]);
  });

  it("a bare replica server (no admin) answers NOT_MANAGED, and SET_REBUILDING only marks in memory", async () => {
    const bare = await startServer({ "vol-1": 1 });
    try {
      const bareClient = await bare.connect();
      const refused = await bareClient.listReplicas().catch((e: unknown) => e);
      expect(refused).toBeInstanceOf(ReplicaRefusedError);
      expect((refused as ReplicaRefusedError).status).toBe(Status.NOT_MANAGED);
      await bareClient.setRebuilding("vol-1", 1, true);
      expect((await bareClient.getState("vol-1")).rebuilding).toBe(true);
      expect(await bareClient.allocatedRuns("vol-1").catch((e: unknown) => e)).toMatchObject({
        status: Status.NOT_IN_SYNC,
      });
    } finally {
      await bare.stop();
    }
  });
});
