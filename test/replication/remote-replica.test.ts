import { describe, expect, it } from "vitest";
import { StaleEpochError } from "../../agent/replication/errors.js";
import { RemoteReplica } from "../../agent/replication/remote-replica.js";
import { BLOCK } from "../store/helpers.js";
import { pattern, useServer, VOLUME_SIZE } from "./harness.js";

describe("RemoteReplica (a remote replica as a BlockDevice)", () => {
  const h = useServer({ "vol-1": 3 });

  it("reads and writes through the protocol with its epoch", async () => {
    const client = await h.connect();
    const device = new RemoteReplica(client, "vol-1", VOLUME_SIZE, 3);
    await device.write(BLOCK, pattern(2 * BLOCK, 4), { fua: true });
    await device.writeZeroes(BLOCK, 100, { fua: false, mayPunch: true });
    await device.trim(2 * BLOCK, BLOCK, { fua: false });
    await device.flush();
    const expected = pattern(2 * BLOCK, 4)
      .fill(0, 0, 100)
      .fill(0, BLOCK);
    expect(await h.replicas.get("vol-1")!.read(BLOCK, 2 * BLOCK)).toEqual(expected);
    expect(await device.read(BLOCK, 2 * BLOCK)).toEqual(expected);

    device.epoch = 2;
    await expect(device.write(0, pattern(BLOCK, 1), { fua: false })).rejects.toBeInstanceOf(StaleEpochError);
    await expect(device.read(0, BLOCK)).rejects.toBeInstanceOf(StaleEpochError);
  });
});
