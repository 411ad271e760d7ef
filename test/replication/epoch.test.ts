import { beforeEach, describe, expect, it } from "vitest";
import type { ReplicaClient } from "../../agent/replication/client.js";
import { ReplicaRefusedError, StaleEpochError } from "../../agent/replication/errors.js";
import { Status } from "../../agent/replication/wire/protocol.js";
import { BLOCK } from "../store/helpers.js";
import { pattern, useServer } from "./harness.js";

describe("epoch fencing (DESIGN invariant 2)", () => {
  const h = useServer({ "vol-1": 5, "vol-2": 5 });
  let client: ReplicaClient;

  beforeEach(async () => {
    client = await h.connect();
  });

  const replica = (id = "vol-1") => h.replica(id);

  it("accepts mutations with the current epoch and refuses stale and future ones, writing nothing", async () => {
    const first = pattern(BLOCK, 1);
    await client.write("vol-1", 5, 0, first, { fua: false });
    for (const epoch of [4, 6, 0]) {
      const attempts = [
        client.write("vol-1", epoch, 0, pattern(BLOCK, 2), { fua: false }),
        client.write("vol-1", epoch, BLOCK, pattern(BLOCK, 3), { fua: true }),
        client.writeZeroes("vol-1", epoch, 0, BLOCK, { fua: false, mayPunch: true }),
        client.trim("vol-1", epoch, 0, BLOCK, { fua: false }),
        client.flush("vol-1", epoch),
        client.snapshot("vol-1", epoch, { id: "s1", name: "s1" }),
      ];
      for (const attempt of attempts) {
        const error = await attempt.then(
          () => undefined,
          (e: unknown) => e,
        );
        expect(error).toBeInstanceOf(StaleEpochError);
        expect(error).toMatchObject({ status: Status.STALE_EPOCH, requestEpoch: epoch, replicaEpoch: 5 });
      }
    }
    expect(await replica().read(0, BLOCK)).toEqual(first);
    expect(await replica().read(BLOCK, BLOCK)).toEqual(Buffer.alloc(BLOCK));
    expect(replica().allocatedBytes).toBe(BLOCK);
    expect(replica().snapshots()).toEqual([]);
    expect(h.log.warnings().some((msg) => msg.includes("epoch 6 refused"))).toBe(true);
  });

  it("moves the epoch forward only, and only from the expected epoch", async () => {
    for (const [expected, next] of [
      [5, 5],
      [5, 4],
      [4, 6],
      [6, 7],
    ] as const) {
      await expect(client.setEpoch("vol-1", expected, next)).rejects.toBeInstanceOf(StaleEpochError);
      expect(replica().epoch).toBe(5);
    }
    await client.setEpoch("vol-1", 5, 9);
    expect(replica().epoch).toBe(9);
    expect((await client.getState("vol-1")).epoch).toBe(9);
  });

  it("refuses the old epoch after SET_EPOCH and takes the new one", async () => {
    await client.setEpoch("vol-1", 5, 6);
    await expect(client.write("vol-1", 5, 0, pattern(BLOCK, 1), { fua: false })).rejects.toMatchObject({
      name: "StaleEpochError",
      replicaEpoch: 6,
    });
    expect(replica().allocatedBytes).toBe(0);
    await client.write("vol-1", 6, 0, pattern(BLOCK, 1), { fua: false });
    expect(await replica().read(0, BLOCK)).toEqual(pattern(BLOCK, 1));
  });

  it("lands writes sent before SET_EPOCH before it answers, and refuses old-epoch writes after it", async () => {
    const size = 256 * 1024;
    let landed = 0;
    // Durable and large, so they are still running when SET_EPOCH arrives right behind them.
    const before = Array.from({ length: 50 }, (_, i) =>
      client.write("vol-1", 5, i * size, pattern(size, i), { fua: true }).then(() => landed++),
    );
    const change = client.setEpoch("vol-1", 5, 6).then(() => landed);
    const after = Array.from({ length: 50 }, (_, i) =>
      client.write("vol-1", 5, (50 + i) * size, pattern(size, 50 + i), { fua: false }),
    );
    const outcomes = Promise.allSettled(after);
    // SET_EPOCH answers only once every write admitted under the old epoch has finished.
    expect(await change).toBe(50);
    await Promise.all(before);
    for (const result of await outcomes) {
      expect(result.status).toBe("rejected");
      expect((result as PromiseRejectedResult).reason).toBeInstanceOf(StaleEpochError);
    }
    for (let i = 0; i < 50; i++)
      expect((await replica().read(i * size, size)).equals(pattern(size, i))).toBe(true);
    expect(replica().allocatedBytes).toBe(50 * size);
  });

  it("fences reads that carry an epoch; an epoch-less read is served", async () => {
    await client.write("vol-1", 5, 0, pattern(BLOCK, 1), { fua: false });
    await expect(client.read("vol-1", 0, BLOCK, { epoch: 4 })).rejects.toBeInstanceOf(StaleEpochError);
    expect(await client.read("vol-1", 0, BLOCK, { epoch: 5 })).toEqual(pattern(BLOCK, 1));
    expect(await client.read("vol-1", 0, BLOCK)).toEqual(pattern(BLOCK, 1));
  });

  it("a replica left behind at the old epoch refuses writes of the new one until it is moved", async () => {
    // The coordinator moved vol-1's in-sync replica on; this one (vol-2 here) was removed.
    await client.setEpoch("vol-1", 5, 6);
    await client.write("vol-1", 6, 0, pattern(BLOCK, 1), { fua: false });
    await expect(client.write("vol-2", 6, 0, pattern(BLOCK, 1), { fua: false })).rejects.toBeInstanceOf(
      StaleEpochError,
    );
    expect(replica("vol-2").allocatedBytes).toBe(0);

    // Rebuild hook: while rebuilding it is write-only.
    expect(h.server.setRebuilding("vol-2", true)).toBe(true);
    expect(h.server.setRebuilding("vol-9", true)).toBe(false);
    await client.setEpoch("vol-2", 5, 6);
    await client.write("vol-2", 6, 0, pattern(BLOCK, 1), { fua: false });
    const refusal = await client.read("vol-2", 0, BLOCK).catch((e: unknown) => e);
    expect(refusal).toBeInstanceOf(ReplicaRefusedError);
    expect(refusal).toMatchObject({ status: Status.NOT_IN_SYNC });
    expect((await client.getState("vol-2")).rebuilding).toBe(true);
    h.server.setRebuilding("vol-2", false);
    expect(await client.read("vol-2", 0, BLOCK)).toEqual(pattern(BLOCK, 1));
  });
});
