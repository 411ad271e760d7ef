import { spawn } from "node:child_process";
import { open, readFile, rm, truncate, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { Replica } from "../../agent/store/replica.js";
import { blockOfWrite, CRASH_VOLUME_BLOCKS, stampedBlock } from "./crash-writer.js";
import {
  BLOCK,
  createReplica,
  expectSameBytes,
  filled,
  MiB,
  random,
  TestAllocator,
  tempDir,
} from "./helpers.js";

const NO_FUA = { fua: false };
const VOLUME = 4 * MiB;

describe("durability", () => {
  let dir: Awaited<ReturnType<typeof tempDir>>;

  beforeEach(async () => {
    dir = await tempDir();
  });
  afterEach(async () => {
    await dir.cleanup();
  });

  it("reads back everything after close and reopen", async () => {
    const model = Buffer.alloc(VOLUME);
    const rng = random(7);
    const replica = await createReplica(dir.path, VOLUME);
    for (let i = 0; i < 100; i++) {
      const offset = rng.int(VOLUME - 70_000);
      const data = rng.bytes(1 + rng.int(70_000));
      await replica.write(offset, data, NO_FUA);
      data.copy(model, offset);
    }
    await replica.trim(MiB, MiB, NO_FUA);
    model.fill(0, MiB, 2 * MiB);
    await replica.close();
    const reopened = await Replica.open(dir.path, { allocator: new TestAllocator() });
    await expectSameBytes((o, l) => reopened.read(o, l), model);
    expect(reopened.volumeId).toBe("vol-1");
    expect(reopened.replicaId).toBe("rep-1");
    expect(reopened.epoch).toBe(1);
    await reopened.setEpoch(4);
    await reopened.close();
    const again = await Replica.open(dir.path, { allocator: new TestAllocator() });
    expect(again.epoch).toBe(4);
    await again.close();
  });

  it("keeps flushed writes when the replica is dropped without close", async () => {
    const dropped = await createReplica(dir.path, VOLUME);
    await dropped.write(0, filled(MiB, 1), NO_FUA);
    await dropped.write(2 * MiB + 100, filled(5000, 2), { fua: true });
    await dropped.flush();
    // Not flushed: may or may not be there after the "crash", but must not damage anything.
    await dropped.write(3 * MiB, filled(BLOCK, 3), NO_FUA);
    const reopened = await Replica.open(dir.path, { allocator: new TestAllocator() });
    expect((await reopened.read(0, MiB)).equals(filled(MiB, 1))).toBe(true);
    expect((await reopened.read(2 * MiB + 100, 5000)).equals(filled(5000, 2))).toBe(true);
    const unflushed = await reopened.read(3 * MiB, BLOCK);
    expect(unflushed.equals(filled(BLOCK, 3)) || unflushed.equals(Buffer.alloc(BLOCK))).toBe(true);
    await reopened.close();
  });

  it("flushes dirty writes in the background within about 5 seconds", async () => {
    const dropped = await createReplica(dir.path, VOLUME);
    await dropped.write(BLOCK, filled(BLOCK, 4), NO_FUA);
    await new Promise((resolve) => setTimeout(resolve, 6000));
    // A second instance sees only what is on disk: the map page must have been written.
    const reopened = await Replica.open(dir.path, { allocator: new TestAllocator() });
    expect((await reopened.read(BLOCK, BLOCK)).equals(filled(BLOCK, 4))).toBe(true);
    await reopened.close();
  });

  it("after kill -9, every acknowledged FUA write reads back and no block is torn", async () => {
    const child = spawn(
      process.execPath,
      ["--import", "tsx", join(import.meta.dirname, "crash-writer.ts"), dir.path],
      {
        stdio: ["ignore", "pipe", "inherit"],
      },
    );
    let output = "";
    const lastAcked = await new Promise<number>((resolve, reject) => {
      child.on("error", reject);
      child.on("exit", (code, signal) => {
        if (signal !== "SIGKILL") reject(new Error(`crash writer exited early (code ${code})`));
      });
      child.stdout.setEncoding("utf8");
      child.stdout.on("data", (chunk: string) => {
        output += chunk;
        const acks = output.match(/acked (\d+)\n/g);
        if (acks !== null && acks.length >= 300) {
          child.kill("SIGKILL");
          resolve(Number(acks[acks.length - 1]!.match(/\d+/)![0]));
        }
      });
    });
    await new Promise((resolve) => child.once("exit", resolve));

    // The newest acknowledged write to each block; later writes may also have landed.
    const lastAckedWrite = new Array<number>(CRASH_VOLUME_BLOCKS).fill(0);
    for (let n = 1; n <= lastAcked; n++) lastAckedWrite[blockOfWrite(n)] = n;

    const replica = await Replica.open(dir.path, { allocator: new TestAllocator() });
    try {
      for (let block = 0; block < CRASH_VOLUME_BLOCKS; block++) {
        const contents = await replica.read(block * BLOCK, BLOCK);
        const n = contents.readUInt32LE(0);
        expect(contents.equals(stampedBlock(n)), `block ${block} is torn or foreign`).toBe(true);
        expect(n === 0 || blockOfWrite(n) === block, `block ${block} holds write ${n}`).toBe(true);
        expect(n, `block ${block} lost acknowledged write ${lastAckedWrite[block]}`).toBeGreaterThanOrEqual(
          lastAckedWrite[block]!,
        );
      }
      const [base] = replica.snapshots();
      await expectSameBytes(
        (o, l) => replica.readSnapshot(base!.id, o, l),
        Buffer.concat(Array.from({ length: CRASH_VOLUME_BLOCKS }, () => stampedBlock(0))),
      );
    } finally {
      await replica.close();
    }
  });

  it("removes the files of an interrupted chain change when it opens", async () => {
    const replica = await createReplica(dir.path, VOLUME);
    await replica.write(0, filled(BLOCK, 1), NO_FUA);
    await replica.close();
    await writeFile(join(dir.path, "layer-9.data"), "leftover");
    await writeFile(join(dir.path, "layer-9.map"), "leftover");
    const reopened = await Replica.open(dir.path, { allocator: new TestAllocator() });
    await expect(readFile(join(dir.path, "layer-9.map"))).rejects.toMatchObject({ code: "ENOENT" });
    expect((await reopened.read(0, BLOCK)).equals(filled(BLOCK, 1))).toBe(true);
    await reopened.close();
  });

  describe("refuses damaged files with a clear message", () => {
    beforeEach(async () => {
      const replica = await createReplica(dir.path, VOLUME);
      await replica.write(0, filled(2 * BLOCK, 1), NO_FUA);
      await replica.snapshot("s");
      await replica.close();
    });

    const openIt = () => Replica.open(dir.path, { allocator: new TestAllocator() });

    it("replica.json that is not JSON", async () => {
      await writeFile(join(dir.path, "replica.json"), '{"formatVersion": 1, "volu');
      await expect(openIt()).rejects.toThrow(/replica\.json: corrupt replica manifest: not valid JSON/);
    });

    it("replica.json with a wrong field", async () => {
      const manifest = JSON.parse(await readFile(join(dir.path, "replica.json"), "utf8"));
      manifest.sizeBytes = 1000;
      await writeFile(join(dir.path, "replica.json"), JSON.stringify(manifest));
      await expect(openIt()).rejects.toThrow(/replica\.json: corrupt replica manifest: .*sizeBytes/);
    });

    it("replica.json whose head is a snapshot", async () => {
      const manifest = JSON.parse(await readFile(join(dir.path, "replica.json"), "utf8"));
      manifest.layers.pop();
      await writeFile(join(dir.path, "replica.json"), JSON.stringify(manifest));
      await expect(openIt()).rejects.toThrow(
        /replica\.json: corrupt replica manifest: .*head layer cannot be a snapshot/,
      );
    });

    it("a map header with a bad magic", async () => {
      const file = await open(join(dir.path, "layer-1.map"), "r+");
      await file.write(Buffer.from("GARBAGE!"), 0, 8, 0);
      await file.close();
      await expect(openIt()).rejects.toThrow(/layer-1\.map: corrupt layer map header: magic/);
    });

    it("a map header naming another layer", async () => {
      const file = await open(join(dir.path, "layer-2.map"), "r+");
      const id = Buffer.alloc(4);
      id.writeUInt32LE(7);
      await file.write(id, 0, 4, 24);
      await file.close();
      await expect(openIt()).rejects.toThrow(
        /layer-2\.map: corrupt layer map header: layer id is 7, expected 2/,
      );
    });

    it("a truncated map", async () => {
      await truncate(join(dir.path, "layer-1.map"), 100);
      await expect(openIt()).rejects.toThrow(/layer-1\.map: truncated layer map/);
      await truncate(join(dir.path, "layer-1.map"), 4096);
      await expect(openIt()).rejects.toThrow(/layer-1\.map: truncated layer map: 4096 bytes, expected/);
    });

    it("a map page with an invalid block state", async () => {
      const file = await open(join(dir.path, "layer-1.map"), "r+");
      await file.write(Buffer.from([0xff]), 0, 1, 4096 + 10);
      await file.close();
      await expect(openIt()).rejects.toThrow(
        /layer-1\.map: corrupt layer map: invalid block state code at byte offset 4106/,
      );
    });

    it("a missing layer file", async () => {
      await rm(join(dir.path, "layer-1.data"));
      await expect(openIt()).rejects.toThrow(/layer-1\.data: layer file is missing/);
    });

    it("a data file cut short under mapped blocks", async () => {
      await truncate(join(dir.path, "layer-1.data"), BLOCK);
      await expect(openIt()).rejects.toThrow(
        /layer-1\.data: truncated layer data: 4096 bytes, but block 1 is mapped/,
      );
    });
  });
});
