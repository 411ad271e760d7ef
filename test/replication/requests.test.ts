import { beforeEach, describe, expect, it } from "vitest";
import type { ReplicaClient } from "../../agent/replication/client.js";
import { BLOCK, expectSameBytes, MiB } from "../store/helpers.js";
import { pattern, useServer, VOLUME_SIZE } from "./harness.js";

describe("replication requests over TCP", () => {
  const h = useServer({ "vol-1": 1 });
  let client: ReplicaClient;

  beforeEach(async () => {
    client = await h.connect();
  });

  const replica = () => h.replica();

  it("round-trips every request type against the real replica", async () => {
    const data = pattern(3 * BLOCK, 7);
    await client.write("vol-1", 1, BLOCK, data, { fua: false });
    expect(await replica().read(BLOCK, 3 * BLOCK)).toEqual(data);
    expect(await client.read("vol-1", BLOCK, 3 * BLOCK)).toEqual(data);

    await client.flush("vol-1", 1);

    const state = await client.getState("vol-1");
    expect(state).toEqual({
      epoch: 1,
      sizeBytes: VOLUME_SIZE,
      allocatedBytes: replica().allocatedBytes,
      rebuilding: false,
    });
    expect(state.allocatedBytes).toBe(3 * BLOCK);

    const snapshot = await client.snapshot("vol-1", 1, { id: "snap-id-1", name: "before-zeroes" });
    const recorded = replica().snapshots();
    expect(recorded.map((s) => s.name)).toEqual(["before-zeroes"]);
    expect(recorded[0]!.id).toBe("snap-id-1");
    expect(snapshot).toMatchObject({
      id: "snap-id-1",
      name: "before-zeroes",
      layerId: recorded[0]!.layerId,
    });

    await client.writeZeroes("vol-1", 1, BLOCK, BLOCK, { fua: true, mayPunch: true });
    await client.writeZeroes("vol-1", 1, 2 * BLOCK, 100, { fua: false, mayPunch: false });
    const expected = Buffer.from(data);
    expected.fill(0, 0, BLOCK + 100);
    expect(await client.read("vol-1", BLOCK, 3 * BLOCK)).toEqual(expected);

    await client.trim("vol-1", 1, 3 * BLOCK, BLOCK, { fua: false });
    expect(await client.read("vol-1", 3 * BLOCK, BLOCK)).toEqual(Buffer.alloc(BLOCK));
    // The snapshot still holds what was there before.
    expect(await replica().readSnapshot(recorded[0]!.id, BLOCK, 3 * BLOCK)).toEqual(data);

    await client.setEpoch("vol-1", 1, 2);
    expect(replica().epoch).toBe(2);
    expect((await client.getState("vol-1")).epoch).toBe(2);
  });

  it("answers pipelined requests as they finish, not in the order sent", async () => {
    const order: string[] = [];
    const big = pattern(8 * MiB, 3);
    // Sent in this order in one burst: the durable 8 MiB write needs the disk, the state query does not.
    const write = client.write("vol-1", 1, 0, big, { fua: true }).then(() => order.push("write"));
    const state = client.getState("vol-1").then(() => order.push("state"));
    await Promise.all([write, state]);
    expect(order).toEqual(["state", "write"]);
  });

  it("serves a burst of 1000 pipelined requests", async () => {
    const count = 1000;
    const writes = [];
    for (let i = 0; i < count; i++) {
      writes.push(client.write("vol-1", 1, i * BLOCK, pattern(BLOCK, i), { fua: false }));
    }
    await Promise.all(writes);
    const reads = [];
    for (let i = 0; i < count; i++) reads.push(client.read("vol-1", i * BLOCK, BLOCK));
    const blocks = await Promise.all(reads);
    blocks.forEach((block, i) => {
      expect(block.equals(pattern(BLOCK, i)), `block ${i}`).toBe(true);
    });
    expect(client.inFlight).toBe(0);
  });

  it("carries 8 MiB writes and reads intact", async () => {
    const model = Buffer.alloc(32 * MiB);
    const chunks = [0, 1, 2].map((i) => pattern(8 * MiB, 100 + i));
    // Unaligned offsets, two of them overlapping.
    // Unaligned, not overlapping: concurrent writes to the same bytes may land in either order.
    const offsets = [12_345, 8 * MiB + 20_000, 16 * MiB + 20_007];
    await Promise.all(chunks.map((chunk, i) => client.write("vol-1", 1, offsets[i]!, chunk, { fua: false })));
    for (const [i, chunk] of chunks.entries()) chunk.copy(model, offsets[i]);
    await expectSameBytes((offset, length) => replica().read(offset, length), model);
    const readBack = await client.read("vol-1", offsets[1]! - 1, 8 * MiB);
    expect(readBack.equals(model.subarray(offsets[1]! - 1, offsets[1]! - 1 + 8 * MiB))).toBe(true);
  });

  it("refuses I/O outside the volume with EINVAL and writes nothing", async () => {
    await expect(
      client.write("vol-1", 1, VOLUME_SIZE - 10, pattern(BLOCK, 1), { fua: false }),
    ).rejects.toMatchObject({ name: "BlockIoError", errno: "EINVAL" });
    await expect(client.read("vol-1", VOLUME_SIZE, BLOCK)).rejects.toMatchObject({ errno: "EINVAL" });
    expect(replica().allocatedBytes).toBe(0);
  });
});
