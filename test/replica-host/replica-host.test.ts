import { spawn } from "node:child_process";
import { once } from "node:events";
import { existsSync } from "node:fs";
import { mkdir, readdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { Pool } from "../../agent/pool.js";
import type { ReplicaHost } from "../../agent/replica-host.js";
import { servedEntry } from "../../agent/replication/server/served-entries.js";
import { StrataError } from "../../core/errors.js";
import { formatSize } from "../../core/units.js";
import { BLOCK, MiB, tempDir } from "../store/helpers.js";
import { openHost, SIZE } from "./helpers.js";

describe("ReplicaHost", () => {
  let dir: { path: string; cleanup: () => Promise<void> };
  let host: ReplicaHost | undefined;

  beforeEach(async () => {
    dir = await tempDir();
  });
  afterEach(async () => {
    await host?.close();
    host = undefined;
    await dir.cleanup();
  });

  const reopen = async (capacities?: number[]) => {
    await host?.close();
    host = await openHost(dir.path, capacities);
    return host;
  };

  it("creates replicas on the drive with the most free space, and reopens them with their epoch and data", async () => {
    let h = await reopen([100 * MiB, 300 * MiB]);
    const a = await h.create("vol-a", "rep-a", SIZE, 7);
    expect(h.dirOf("vol-a")).toBe(join(dir.path, "d1", "volumes", "vol-a"));
    // Fill d1 until d0 has more free space: the next replica goes there.
    await a.write(0, Buffer.alloc(250 * MiB, 1), { fua: true });
    await h.create("vol-b", "rep-b", SIZE * 4, 2);
    expect(h.dirOf("vol-b")).toBe(join(dir.path, "d0", "volumes", "vol-b"));
    expect(h.get("vol-a")).toBe(a);
    expect(
      h
        .list()
        .map((r) => r.volumeId)
        .sort(),
    ).toEqual(["vol-a", "vol-b"]);

    h = await reopen([100 * MiB, 300 * MiB]);
    const reopened = h.get("vol-a")!;
    expect(reopened).not.toBe(a);
    expect({ replicaId: reopened.replicaId, epoch: reopened.epoch, size: reopened.sizeBytes }).toEqual({
      replicaId: "rep-a",
      epoch: 7,
      size: SIZE,
    });
    expect(await reopened.read(0, BLOCK)).toEqual(Buffer.alloc(BLOCK, 1));
    expect(h.listReplicas()).toHaveLength(2);
  });

  it("destroys a replica: directory gone, space given back; a second destroy finds nothing", async () => {
    const h = await reopen([100 * MiB]);
    const replica = await h.create("vol-a", "rep-a", SIZE, 1);
    await replica.write(0, Buffer.alloc(MiB, 3), { fua: false });
    const drive = join(dir.path, "d0", "volumes");
    await h.destroy("vol-a");
    expect(await readdir(drive)).toEqual([]);
    expect(h.get("vol-a")).toBeUndefined();
    // Idempotent: nothing there, nothing done.
    await h.destroy("vol-a");
    // The space is back: a new replica can take the whole drive again.
    const again = await h.create("vol-a", "rep-a2", SIZE, 1);
    await again.write(0, Buffer.alloc(99 * MiB, 4), { fua: false });
  });

  it("refuses a second replica of a volume and ids that are not safe directory names", async () => {
    const h = await reopen();
    await h.create("vol-a", "rep-a", SIZE, 1);
    await expect(h.create("vol-a", "rep-b", SIZE, 1)).rejects.toMatchObject({ code: "ALREADY_EXISTS" });
    for (const bad of ["../escape", "a/b", "x.deleting", "", ".hidden"]) {
      await expect(h.create(bad, "rep", SIZE, 1)).rejects.toMatchObject({ code: "INVALID_ARGUMENT" });
    }
    expect(await readdir(join(dir.path, "d0", "volumes"))).toEqual(["vol-a"]);
  });

  it("answers management requests: idempotent create and delete, refusal for another replica, local volumes held", async () => {
    const h = await reopen();
    const spec = { volumeId: "vol-a", replicaId: "rep-a", sizeBytes: SIZE, epoch: 4 };
    const info = await h.createReplica(spec);
    expect(info).toEqual({ ...spec, allocatedBytes: 0, rebuilding: false });
    await h.get("vol-a")!.write(0, Buffer.alloc(BLOCK, 9), { fua: false });
    // The same replica again: answered as it is now, not recreated.
    expect(await h.createReplica(spec)).toMatchObject({ replicaId: "rep-a", allocatedBytes: BLOCK });
    await expect(h.createReplica({ ...spec, replicaId: "rep-other" })).rejects.toMatchObject({
      code: "ALREADY_EXISTS",
    });
    expect(await h.deleteReplica("vol-a", "rep-other")).toBe(false);
    expect(h.get("vol-a")).toBeDefined();
    expect(await h.deleteReplica("vol-a", "rep-a")).toBe(true);
    expect(await h.deleteReplica("vol-a", "rep-a")).toBe(false);
  });

  it("keeps the rebuild mark across a restart, and clears it for good", async () => {
    let h = await reopen();
    await h.create("vol-a", "rep-a", SIZE, 1);
    await h.setRebuilding("vol-a", true);
    expect(servedEntry(h.get("vol-a")!).rebuilding).toBe(true);
    h = await reopen();
    expect(h.listReplicas("vol-a")).toEqual([
      expect.objectContaining({ replicaId: "rep-a", rebuilding: true }),
    ]);
    await h.setRebuilding("vol-a", false);
    h = await reopen();
    expect(h.listReplicas("vol-a")[0]!.rebuilding).toBe(false);
    expect(h.listReplicas("vol-none")).toEqual([]);
  });

  it("refuses up front a replica its filesystem cannot hold as one file, in one sentence", async () => {
    const TiB = 1024 ** 4;
    const h = await reopen([1000 * TiB]);
    const limit = (await Pool.open([{ path: join(dir.path, "d0") }])).usage(0).fileSizeLimitBytes;
    // ext4 with 4 KiB blocks (this machine's /tmp) refuses files of 16 TiB; other filesystems may not.
    expect(limit, "the file size limit of the drive's filesystem").toBeDefined();
    if (limit === undefined) return;
    const refusal = await h.create("big", "rep-big", limit, 1).catch((error: unknown) => error);
    expect(refusal).toBeInstanceOf(StrataError);
    expect(refusal).toMatchObject({
      code: "RESOURCE_EXHAUSTED",
      message: `this node has no room for a ${formatSize(limit)} volume: its filesystem holds only files smaller than ${formatSize(limit)}`,
    });
    await expect(
      h.createReplica({ volumeId: "big", replicaId: "rep-big", sizeBytes: limit + 4096, epoch: 1 }),
    ).rejects.toThrow(/its filesystem holds only files smaller than/);
    expect(h.list()).toEqual([]);
    expect(await readdir(join(dir.path, "d0", "volumes"))).toEqual([]);
    await h.create("fits", "rep-fits", limit - 4096, 1);
  });

  it("over-provisions thin replicas up to the limit, then refuses naming what is provisioned", async () => {
    const h = await reopen([1024 * MiB]);
    await h.create("a", "rep-a", 1536 * MiB, 1);
    await h.createReplica({ volumeId: "b", replicaId: "rep-b", sizeBytes: 512 * MiB, epoch: 1 });
    const message =
      "this node has no room for a 4 KiB volume: 2 GiB provisioned of 2 GiB allowed (200% of 1 GiB)";
    await expect(h.create("c", "rep-c", BLOCK, 1)).rejects.toThrow(message);
    await expect(
      h.createReplica({ volumeId: "c", replicaId: "rep-c", sizeBytes: BLOCK, epoch: 1 }),
    ).rejects.toThrow(message);
    await h.destroy("b");
    await h.create("c", "rep-c", BLOCK, 1);
  });

  it("a create whose caller fails before the commit leaves nothing behind", async () => {
    const h = await reopen();
    await expect(
      h.create("vol-a", "rep-a", SIZE, 1, {
        beforeCommit: async () => {
          throw new Error("record write failed");
        },
      }),
    ).rejects.toThrow("record write failed");
    expect(h.get("vol-a")).toBeUndefined();
    expect(await readdir(join(dir.path, "d0", "volumes"))).toEqual([]);
    await h.create("vol-a", "rep-a", SIZE, 1);
  });

  it("at open, removes a replica whose create a crash (kill -9) interrupted, and finishes interrupted deletes", async () => {
    const drive = join(dir.path, "d0");
    await mkdir(drive, { recursive: true });
    const child = spawn(
      process.execPath,
      ["--import", "tsx", join(import.meta.dirname, "crash-create-process.ts"), drive, "vol-crash"],
      { stdio: ["ignore", "pipe", "inherit"] },
    );
    // Listened for from the start, so an exit before the kill cannot be missed.
    const exited = once(child, "exit");
    let output = "";
    for await (const chunk of child.stdout!) {
      output += String(chunk);
      if (output.includes("made")) break;
    }
    const half = join(drive, "volumes", "vol-crash");
    // The crash point: the replica and the caller's file exist, the create is not committed.
    expect((await readdir(half)).sort()).toEqual(expect.arrayContaining(["replica.json", "volume.json"]));
    child.kill("SIGKILL");
    await exited;

    // Other leftovers: a directory without a replica, and a delete renamed but not finished.
    await mkdir(join(drive, "volumes", "vol-empty"));
    await mkdir(join(drive, "volumes", "vol-gone.deleting"));
    await writeFile(join(drive, "volumes", "vol-gone.deleting", "layer-1.data"), "x");

    const h = await reopen();
    expect(h.list()).toEqual([]);
    expect(await readdir(join(drive, "volumes"))).toEqual([]);
    expect(existsSync(half)).toBe(false);
    // The volume id is free again.
    await h.create("vol-crash", "rep-new", SIZE, 1);
  });
});
