import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { type Harness, RawClient, startHarness } from "./harness.js";
import {
  CMD,
  connectTransmission,
  goData,
  greet,
  OPT,
  option,
  REP,
  readInfoReplies,
  readOptionReply,
  readReply,
  request,
} from "./wire.js";

const SIZE = 4 * 1024 * 1024;
let h: Harness;

beforeAll(async () => {
  h = await startHarness({ disk: SIZE, small: 12345 });
});
afterAll(async () => {
  await h.stop();
});

/** After every case: all leases released exactly once, and a fresh client is served. */
afterEach(async () => {
  await h.settled();
  expect(h.registry.doubleReleases).toBe(0);
  expect(h.registry.releases).toBe(h.registry.opens);
  const { client } = await connectTransmission(h.port, "disk");
  client.write(request(CMD.READ, 7n, 0, 512));
  expect(await readReply(client)).toEqual({ error: 0, cookie: 7n });
  await client.read(512);
  client.write(request(CMD.DISC, 0n, 0, 0));
  await client.readUntilClosed();
  await h.settled();
  expect(h.registry.releases).toBe(h.registry.opens);
});

describe("NBD handshake", () => {
  it("greets with fixed newstyle and no-zeroes", async () => {
    const client = await RawClient.connect(h.port);
    const flags = await greet(client);
    expect(flags).toBe(0b11);
    client.write(option(OPT.ABORT));
    expect(await readOptionReply(client)).toMatchObject({ option: OPT.ABORT, type: REP.ACK });
    expect((await client.readUntilClosed()).length).toBe(0);
  });

  it("closes on a truncated handshake", async () => {
    const client = await RawClient.connect(h.port);
    await client.read(18);
    client.write(Buffer.from([0, 0])); // half of the client flags
    client.end();
    expect((await client.readUntilClosed()).length).toBe(0);
  });

  it("closes on a truncated option", async () => {
    const client = await RawClient.connect(h.port);
    await greet(client);
    client.write(option(OPT.GO, goData("disk")).subarray(0, 20));
    client.end();
    expect((await client.readUntilClosed()).length).toBe(0);
    expect(h.registry.opens).toBe(h.registry.releases);
  });

  it("closes on unknown client flags", async () => {
    const client = await RawClient.connect(h.port);
    await greet(client, 0x10 | 1);
    expect((await client.readUntilClosed()).length).toBe(0);
  });

  it("closes on a wrong option magic", async () => {
    const client = await RawClient.connect(h.port);
    await greet(client);
    const bad = option(OPT.LIST);
    bad.write("NOTMAGIC", 0);
    client.write(bad);
    expect((await client.readUntilClosed()).length).toBe(0);
  });

  it("refuses unknown and unsupported options with ERR_UNSUP and keeps negotiating", async () => {
    const client = await RawClient.connect(h.port);
    await greet(client);
    for (const opt of [42, OPT.STRUCTURED_REPLY, OPT.STARTTLS, 9, 10, 0x7fffffff]) {
      client.write(option(opt, opt === 42 ? Buffer.from("ignored data") : undefined));
      const reply = await readOptionReply(client);
      expect(reply).toMatchObject({ option: opt, type: REP.ERR_UNSUP });
    }
    client.write(option(OPT.LIST));
    const names: string[] = [];
    for (;;) {
      const reply = await readOptionReply(client);
      if (reply.type === REP.ACK) break;
      expect(reply.type).toBe(REP.SERVER);
      names.push(reply.data.toString("utf8", 4, 4 + reply.data.readUInt32BE(0)));
    }
    expect(names.sort()).toEqual(["disk", "small"]);
    client.write(option(OPT.ABORT));
    await readOptionReply(client);
    await client.readUntilClosed();
  });

  it("refuses NBD_OPT_LIST with data", async () => {
    const client = await RawClient.connect(h.port);
    await greet(client);
    client.write(option(OPT.LIST, Buffer.from("x")));
    expect((await readOptionReply(client)).type).toBe(REP.ERR_INVALID);
    client.destroy();
  });

  it("answers NBD_OPT_INFO with export, name, description and block sizes, and releases the lease", async () => {
    const opensBefore = h.registry.opens;
    const client = await RawClient.connect(h.port);
    await greet(client);
    client.write(option(OPT.INFO, goData("small", [1, 2, 3, 999])));
    const { infos, final } = await readInfoReplies(client);
    expect(final.type).toBe(REP.ACK);
    const exp = infos.get(0)!;
    expect(exp.length).toBe(10);
    expect(Number(exp.readBigUInt64BE(0))).toBe(12345);
    // HAS_FLAGS | SEND_FLUSH | SEND_FUA | SEND_TRIM | SEND_WRITE_ZEROES | CAN_MULTI_CONN
    expect(exp.readUInt16BE(8)).toBe(0x1 | 0x4 | 0x8 | 0x20 | 0x40 | 0x100);
    expect(infos.get(1)!.toString()).toBe("small");
    expect(infos.get(2)!.toString()).toBe("memory volume small");
    const bs = infos.get(3)!;
    expect([bs.readUInt32BE(0), bs.readUInt32BE(4), bs.readUInt32BE(8)]).toEqual([1, 4096, 32 * 1024 * 1024]);
    expect(h.registry.opens).toBe(opensBefore + 1);
    expect(h.registry.releases).toBe(h.registry.opens);
    client.write(option(OPT.ABORT));
    await readOptionReply(client);
    await client.readUntilClosed();
  });

  it("answers an unknown export with ERR_UNKNOWN, then GO on a good name works on the same connection", async () => {
    const client = await RawClient.connect(h.port);
    await greet(client);
    client.write(option(OPT.GO, goData("nope", [3])));
    const first = await readInfoReplies(client);
    expect(first.infos.size).toBe(0);
    expect(first.final.type).toBe(REP.ERR_UNKNOWN);
    client.write(option(OPT.GO, goData("disk")));
    const second = await readInfoReplies(client);
    expect(second.final.type).toBe(REP.ACK);
    expect(Number(second.infos.get(0)!.readBigUInt64BE(0))).toBe(SIZE);
    client.write(request(CMD.READ, 1n, SIZE - 4096, 4096));
    expect(await readReply(client)).toEqual({ error: 0, cookie: 1n });
    await client.read(4096);
    client.write(request(CMD.DISC, 0n, 0, 0));
    expect((await client.readUntilClosed()).length).toBe(0);
  });

  it("refuses malformed NBD_OPT_GO data with ERR_INVALID", async () => {
    const client = await RawClient.connect(h.port);
    await greet(client);
    const bad = goData("disk");
    bad.writeUInt32BE(1000, 0); // name length past the option data
    client.write(option(OPT.GO, bad));
    expect((await readInfoReplies(client)).final.type).toBe(REP.ERR_INVALID);
    client.write(option(OPT.GO, Buffer.from([0, 0])));
    expect((await readInfoReplies(client)).final.type).toBe(REP.ERR_INVALID);
    const trailing = Buffer.concat([goData("disk", [3]), Buffer.from([0])]);
    client.write(option(OPT.GO, trailing));
    expect((await readInfoReplies(client)).final.type).toBe(REP.ERR_INVALID);
    client.destroy();
  });

  it("discards an oversized option without buffering it and refuses it with ERR_TOO_BIG", async () => {
    const client = await RawClient.connect(h.port);
    await greet(client);
    const big = Buffer.alloc(1024 * 1024, 0x61);
    client.write(option(OPT.GO, big));
    const reply = await readOptionReply(client);
    expect(reply).toMatchObject({ option: OPT.GO, type: REP.ERR_TOO_BIG });
    client.write(option(OPT.GO, goData("disk")));
    expect((await readInfoReplies(client)).final.type).toBe(REP.ACK);
    client.write(request(CMD.DISC, 0n, 0, 0));
    await client.readUntilClosed();
  });

  it("closes when an oversized export name is announced with NBD_OPT_EXPORT_NAME", async () => {
    const client = await RawClient.connect(h.port);
    await greet(client);
    client.write(option(OPT.EXPORT_NAME, undefined, 0xffffffff));
    expect((await client.readUntilClosed()).length).toBe(0);
  });

  it("closes on NBD_OPT_EXPORT_NAME with an unknown export", async () => {
    const client = await RawClient.connect(h.port);
    await greet(client);
    client.write(option(OPT.EXPORT_NAME, Buffer.from("nope")));
    expect((await client.readUntilClosed()).length).toBe(0);
  });

  it("serves NBD_OPT_EXPORT_NAME with and without the 124 zero bytes", async () => {
    for (const [clientFlags, replyLength] of [
      [3, 10],
      [1, 134],
    ] as const) {
      const client = await RawClient.connect(h.port);
      await greet(client, clientFlags);
      client.write(option(OPT.EXPORT_NAME, Buffer.from("small")));
      client.write(request(CMD.READ, 9n, 0, 16));
      const reply = await client.read(replyLength);
      expect(Number(reply.readBigUInt64BE(0))).toBe(12345);
      expect(reply.readUInt16BE(8) & 0x1).toBe(1);
      expect(reply.subarray(10).every((b) => b === 0)).toBe(true);
      expect(await readReply(client)).toEqual({ error: 0, cookie: 9n });
      await client.read(16);
      client.write(request(CMD.DISC, 0n, 0, 0));
      expect((await client.readUntilClosed()).length).toBe(0);
    }
  });

  it("survives a client that vanishes mid-handshake", async () => {
    const client = await RawClient.connect(h.port);
    await greet(client);
    client.write(option(OPT.GO, goData("disk")).subarray(0, 30));
    client.destroy();
    await client.closed;
  });
});
