import { randomBytes } from "node:crypto";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import type { IoErrno } from "../../agent/block-device.js";
import { registry as metricsRegistry, nbdConnections } from "../../agent/metrics.js";
import type { MemoryDevice } from "../support/memory-device.js";
import { type Harness, type RawClient, startHarness } from "./harness.js";
import { CMD, connectTransmission, ERR, readReply, request } from "./wire.js";

const SIZE = 8 * 1024 * 1024;
const MAX = 32 * 1024 * 1024;
let h: Harness;
let disk: MemoryDevice;
let client: RawClient;
let snapshot: Buffer;

beforeAll(async () => {
  h = await startHarness({ disk: SIZE });
  disk = h.registry.devices.get("disk")!;
  randomBytes(SIZE).copy(disk.data);
});
afterAll(async () => {
  await h.stop();
});

beforeEach(async () => {
  client = (await connectTransmission(h.port, "disk")).client;
  snapshot = Buffer.from(disk.data);
  disk.outOfBounds = 0;
});

/** After every case: the lease is released once, no bad call reached the device, a fresh client works. */
afterEach(async () => {
  client.destroy();
  await h.settled();
  expect(h.registry.doubleReleases).toBe(0);
  expect(h.registry.releases).toBe(h.registry.opens);
  expect(disk.outOfBounds).toBe(0);
  const fresh = (await connectTransmission(h.port, "disk")).client;
  fresh.write(request(CMD.READ, 77n, 4096, 4096));
  expect(await readReply(fresh)).toEqual({ error: 0, cookie: 77n });
  expectBytes(await fresh.read(4096), disk.data.subarray(4096, 8192));
  fresh.write(request(CMD.DISC, 0n, 0, 0));
  await fresh.readUntilClosed();
  await h.settled();
  expect(h.registry.releases).toBe(h.registry.opens);
});

/** Byte comparison without vitest's per-element deep equality (slow on large buffers). */
function expectBytes(actual: Buffer, expected: Buffer): void {
  expect(actual.length).toBe(expected.length);
  expect(actual.equals(expected)).toBe(true);
}

async function expectError(req: Buffer, errno: number, cookie: bigint): Promise<void> {
  client.write(req);
  expect(await readReply(client)).toEqual({ error: errno, cookie });
}

describe("NBD transmission", () => {
  it("reads, writes, flushes, trims and zeroes with the right flags", async () => {
    const data = randomBytes(65536);
    client.write(request(CMD.WRITE, 1n, 4096, data.length, 1, data)); // FUA
    expect(await readReply(client)).toEqual({ error: 0, cookie: 1n });
    expectBytes(disk.data.subarray(4096, 4096 + data.length), data);
    expect(disk.fuaWrites).toContain(4096);

    client.write(request(CMD.READ, 0xffffffffffffffffn, 4096, data.length));
    expect(await readReply(client)).toEqual({ error: 0, cookie: 0xffffffffffffffffn });
    expectBytes(await client.read(data.length), data);

    client.write(request(CMD.WRITE_ZEROES, 3n, 8192, 4096, 2)); // NO_HOLE
    expect(await readReply(client)).toEqual({ error: 0, cookie: 3n });
    client.write(request(CMD.WRITE_ZEROES, 4n, 16384, 4096, 0));
    expect(await readReply(client)).toEqual({ error: 0, cookie: 4n });
    expect(disk.zeroesCalls.slice(-2)).toEqual([
      { offset: 8192, length: 4096, mayPunch: false, fua: false },
      { offset: 16384, length: 4096, mayPunch: true, fua: false },
    ]);
    expect(disk.data.subarray(8192, 12288).every((b) => b === 0)).toBe(true);

    const flushes = disk.calls.flush;
    client.write(request(CMD.FLUSH, 5n, 0, 0));
    expect(await readReply(client)).toEqual({ error: 0, cookie: 5n });
    expect(disk.calls.flush).toBe(flushes + 1);

    const trims = disk.calls.trim;
    client.write(request(CMD.TRIM, 6n, 0, 4096));
    expect(await readReply(client)).toEqual({ error: 0, cookie: 6n });
    expect(disk.calls.trim).toBe(trims + 1);
  });

  it("refuses reads and trims past the end with EINVAL and writes with ENOSPC, changing nothing", async () => {
    await expectError(request(CMD.READ, 1n, SIZE - 512, 1024), ERR.EINVAL, 1n);
    await expectError(request(CMD.READ, 2n, 0xffffffffffffff00n, 512), ERR.EINVAL, 2n);
    await expectError(request(CMD.TRIM, 3n, SIZE, 1), ERR.EINVAL, 3n);
    await expectError(request(CMD.WRITE, 4n, SIZE - 2, 4, 0, Buffer.from("abcd")), ERR.ENOSPC, 4n);
    await expectError(request(CMD.WRITE, 5n, 1n << 62n, 4, 0, Buffer.from("abcd")), ERR.ENOSPC, 5n);
    await expectError(request(CMD.WRITE_ZEROES, 6n, SIZE - 4096, 8192), ERR.ENOSPC, 6n);
    expect(disk.data.equals(snapshot)).toBe(true);
    // The connection is still usable.
    client.write(request(CMD.READ, 7n, SIZE - 512, 512));
    expect(await readReply(client)).toEqual({ error: 0, cookie: 7n });
    expectBytes(await client.read(512), disk.data.subarray(SIZE - 512));
  });

  it("refuses zero lengths, over-long reads and a flush with a range with EINVAL", async () => {
    await expectError(request(CMD.READ, 1n, 0, 0), ERR.EINVAL, 1n);
    await expectError(request(CMD.WRITE, 2n, 0, 0), ERR.EINVAL, 2n);
    await expectError(request(CMD.TRIM, 3n, 0, 0), ERR.EINVAL, 3n);
    await expectError(request(CMD.WRITE_ZEROES, 4n, 0, 0), ERR.EINVAL, 4n);
    await expectError(request(CMD.READ, 5n, 0, MAX + 1), ERR.EINVAL, 5n);
    await expectError(request(CMD.FLUSH, 6n, 0, 512), ERR.EINVAL, 6n);
    await expectError(request(CMD.FLUSH, 7n, 512, 0), ERR.EINVAL, 7n);
    expect(disk.data.equals(snapshot)).toBe(true);
  });

  it("refuses unknown commands and unknown or misplaced flags with EINVAL, skipping write payloads", async () => {
    await expectError(request(CMD.CACHE, 1n, 0, 4096), ERR.EINVAL, 1n);
    await expectError(request(CMD.BLOCK_STATUS, 2n, 0, 4096), ERR.EINVAL, 2n);
    await expectError(request(99, 3n, 0, 4096), ERR.EINVAL, 3n);
    await expectError(request(CMD.READ, 4n, 0, 4096, 1 << 2), ERR.EINVAL, 4n); // DF not negotiated
    await expectError(request(CMD.READ, 5n, 0, 4096, 1 << 12), ERR.EINVAL, 5n);
    await expectError(request(CMD.WRITE_ZEROES, 6n, 0, 4096, 1 << 4), ERR.EINVAL, 6n); // FAST_ZERO not offered
    // NO_HOLE is only valid on WRITE_ZEROES; the payload must still be consumed.
    await expectError(request(CMD.WRITE, 7n, 0, 4096, 2, Buffer.alloc(4096, 0xee)), ERR.EINVAL, 7n);
    await expectError(request(CMD.TRIM, 8n, 0, 4096, 2), ERR.EINVAL, 8n);
    expect(disk.data.equals(snapshot)).toBe(true);
    client.write(request(CMD.READ, 9n, 0, 4096, 1)); // FUA is accepted on every command
    expect(await readReply(client)).toEqual({ error: 0, cookie: 9n });
    expectBytes(await client.read(4096), snapshot.subarray(0, 4096));
  });

  it("closes the connection on a write payload over the maximum, changing nothing", async () => {
    client.write(request(CMD.WRITE, 1n, 0, MAX + 1));
    client.write(Buffer.alloc(65536, 0x55));
    expect((await client.readUntilClosed()).length).toBe(0);
    expect(disk.data.equals(snapshot)).toBe(true);
  });

  it("closes the connection on a bad request magic mid-stream, after answering earlier requests", async () => {
    const good = request(CMD.WRITE, 1n, 0, 512, 0, Buffer.alloc(512, 0x11));
    const garbage = Buffer.from("this is not an NBD request at all....");
    const after = request(CMD.WRITE, 2n, 4096, 512, 0, Buffer.alloc(512, 0x22));
    client.write(Buffer.concat([good, garbage, after]));
    const rest = await client.readUntilClosed();
    expect(rest.length).toBe(16);
    expect(rest.readUInt32BE(4)).toBe(0);
    expect(rest.readBigUInt64BE(8)).toBe(1n);
    expect(disk.data.subarray(0, 512).every((b) => b === 0x11)).toBe(true);
    expectBytes(disk.data.subarray(4096, 4608), snapshot.subarray(4096, 4608));
  });

  it("closes cleanly on a truncated request", async () => {
    client.write(request(CMD.WRITE, 1n, 0, 4096, 0, Buffer.alloc(4096, 0x33)).subarray(0, 1000));
    client.end();
    expect((await client.readUntilClosed()).length).toBe(0);
    expect(disk.data.equals(snapshot)).toBe(true);
  });

  it("maps every BlockIoError errno to its NBD error value", async () => {
    const cases: [IoErrno, number][] = [
      ["EPERM", 1],
      ["EIO", 5],
      ["ENOMEM", 12],
      ["EINVAL", 22],
      ["ENOSPC", 28],
      ["EOVERFLOW", 75],
      ["ENOTSUP", 95],
      ["ESHUTDOWN", 108],
    ];
    let cookie = 100n;
    for (const [errno, value] of cases) {
      disk.failNext("read", errno);
      await expectError(request(CMD.READ, cookie, 0, 4096), value, cookie);
      cookie++;
    }
    disk.failNext("write", "ENOSPC");
    await expectError(request(CMD.WRITE, cookie, 0, 16, 0, Buffer.alloc(16)), 28, cookie);
    disk.failNext("flush", "EIO");
    await expectError(request(CMD.FLUSH, cookie + 1n, 0, 0), 5, cookie + 1n);
  });

  it("replies out of order as requests finish", async () => {
    const open = disk.hold(0);
    client.write(Buffer.concat([request(CMD.READ, 1n, 0, 4096), request(CMD.READ, 2n, 8192, 4096)]));
    expect(await readReply(client)).toEqual({ error: 0, cookie: 2n });
    expectBytes(await client.read(4096), snapshot.subarray(8192, 12288));
    open();
    expect(await readReply(client)).toEqual({ error: 0, cookie: 1n });
    expectBytes(await client.read(4096), snapshot.subarray(0, 4096));
  });

  it("parses requests however the stream is split or batched", async () => {
    const expected = Buffer.from(disk.data);
    const parts: Buffer[] = [];
    for (let i = 0; i < 64; i++) {
      const offset = i * 12_345;
      const payload = randomBytes(1 + ((i * 977) % 9000));
      payload.copy(expected, offset);
      parts.push(request(CMD.WRITE, BigInt(i), offset, payload.length, 0, payload));
    }
    parts.push(request(CMD.READ, 1000n, 0, 64 * 12_345));
    const stream = Buffer.concat(parts);
    // Odd-sized slices: headers and payloads straddle chunk boundaries.
    client.socket.setNoDelay(true);
    for (let at = 0; at < stream.length; at += 1 + (at % 7919)) {
      client.write(stream.subarray(at, Math.min(stream.length, at + 1 + (at % 7919))));
    }
    const seen = new Set<bigint>();
    for (let i = 0; i < 64; i++) {
      const reply = await readReply(client);
      expect(reply.error).toBe(0);
      seen.add(reply.cookie);
      if (reply.cookie === 1000n) break;
    }
    if (!seen.has(1000n)) {
      const last = await readReply(client);
      expect(last).toEqual({ error: 0, cookie: 1000n });
    }
    expectBytes(await client.read(64 * 12_345), expected.subarray(0, 64 * 12_345));
    expect(disk.data.equals(expected)).toBe(true);
  });

  it("answers a deep pipeline sent in one chunk", async () => {
    const count = 600; // more than the per-connection in-flight limit
    const parts: Buffer[] = [];
    for (let i = 0; i < count; i++) parts.push(request(CMD.READ, BigInt(i), (i * 4096) % SIZE, 4096));
    client.write(Buffer.concat(parts));
    const cookies = new Set<bigint>();
    for (let i = 0; i < count; i++) {
      const reply = await readReply(client);
      expect(reply.error).toBe(0);
      const offset = (Number(reply.cookie) * 4096) % SIZE;
      expectBytes(await client.read(4096), disk.data.subarray(offset, offset + 4096));
      cookies.add(reply.cookie);
    }
    expect(cookies.size).toBe(count);
  });

  it("finishes in-flight requests on NBD_CMD_DISC before closing", async () => {
    const open = disk.hold(65536);
    client.write(Buffer.concat([request(CMD.READ, 1n, 65536, 4096), request(CMD.DISC, 0n, 0, 0)]));
    // The reply cannot come before the gate opens; the connection must still be open for it.
    setImmediate(open);
    const rest = await client.readUntilClosed();
    expect(rest.length).toBe(16 + 4096);
    expect(rest.readUInt32BE(4)).toBe(0);
    expectBytes(rest.subarray(16), disk.data.subarray(65536, 65536 + 4096));
  });

  it("releases the lease only once the client vanished and in-flight requests finished", async () => {
    const open = disk.hold(131072);
    const opens = h.registry.opens;
    const writes = disk.calls.write;
    client.write(request(CMD.WRITE, 1n, 131072, 4096, 0, Buffer.alloc(4096, 0x77)));
    // Wait until the request reached the device, then drop the client.
    while (disk.calls.write === writes) await new Promise((r) => setTimeout(r, 5));
    client.destroy();
    await client.closed;
    open();
    await h.settled();
    expect(h.registry.opens).toBe(opens);
    expect(disk.data.subarray(131072, 131072 + 4096).every((b) => b === 0x77)).toBe(true);
  });

  it("counts connections and requests in the metrics", async () => {
    const requests = async (result: string): Promise<number> => {
      const metric = await metricsRegistry.getSingleMetric("strata_volume_io_requests_total")!.get();
      const value = metric.values.find(
        (v) => v.labels["volume"] === "disk" && v.labels["op"] === "read" && v.labels["result"] === result,
      );
      return value?.value ?? 0;
    };
    const gauge = (await nbdConnections.get()).values[0]?.value ?? 0;
    const [ok, failed] = [await requests("ok"), await requests("error")];
    const second = (await connectTransmission(h.port, "disk")).client;
    expect((await nbdConnections.get()).values[0]?.value).toBe(gauge + 1);
    second.write(request(CMD.READ, 1n, 0, 512));
    await readReply(second);
    await second.read(512);
    second.write(request(CMD.READ, 2n, SIZE, 512));
    expect(await readReply(second)).toEqual({ error: ERR.EINVAL, cookie: 2n });
    expect([await requests("ok"), await requests("error")]).toEqual([ok + 1, failed + 1]);
    second.write(request(CMD.DISC, 0n, 0, 0));
    await second.readUntilClosed();
    while ((await nbdConnections.get()).values[0]?.value !== gauge)
      await new Promise((r) => setTimeout(r, 5));
  });
});
