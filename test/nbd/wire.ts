/** Hand-built NBD messages for the raw-socket tests (written from proto.md, independent of agent/nbd). */
import { expect } from "vitest";
import { RawClient } from "./harness.js";

export const NBDMAGIC = Buffer.from("NBDMAGIC");
export const IHAVEOPT = Buffer.from("IHAVEOPT");
export const OPTION_REPLY_MAGIC = 0x3e889045565a9n;

export const OPT = { EXPORT_NAME: 1, ABORT: 2, LIST: 3, STARTTLS: 5, INFO: 6, GO: 7, STRUCTURED_REPLY: 8 };
export const REP = {
  ACK: 1,
  SERVER: 2,
  INFO: 3,
  ERR_UNSUP: 0x80000001,
  ERR_INVALID: 0x80000003,
  ERR_UNKNOWN: 0x80000006,
  ERR_TOO_BIG: 0x80000009,
};
export const CMD = {
  READ: 0,
  WRITE: 1,
  DISC: 2,
  FLUSH: 3,
  TRIM: 4,
  CACHE: 5,
  WRITE_ZEROES: 6,
  BLOCK_STATUS: 7,
};
export const ERR = {
  EPERM: 1,
  EIO: 5,
  ENOMEM: 12,
  EINVAL: 22,
  ENOSPC: 28,
  EOVERFLOW: 75,
  ENOTSUP: 95,
  ESHUTDOWN: 108,
};

export function option(opt: number, data: Buffer = Buffer.alloc(0), length = data.length): Buffer {
  const header = Buffer.alloc(16);
  IHAVEOPT.copy(header, 0);
  header.writeUInt32BE(opt, 8);
  header.writeUInt32BE(length, 12);
  return Buffer.concat([header, data]);
}

export function goData(name: string, infos: number[] = []): Buffer {
  const nameBytes = Buffer.from(name);
  const b = Buffer.alloc(4 + nameBytes.length + 2 + 2 * infos.length);
  b.writeUInt32BE(nameBytes.length, 0);
  nameBytes.copy(b, 4);
  b.writeUInt16BE(infos.length, 4 + nameBytes.length);
  for (const [i, info] of infos.entries()) b.writeUInt16BE(info, 6 + nameBytes.length + 2 * i);
  return b;
}

export interface OptionReply {
  option: number;
  type: number;
  data: Buffer;
}

export async function readOptionReply(client: RawClient): Promise<OptionReply> {
  const header = await client.read(20);
  expect(header.readBigUInt64BE(0)).toBe(OPTION_REPLY_MAGIC);
  const length = header.readUInt32BE(16);
  return {
    option: header.readUInt32BE(8),
    type: header.readUInt32BE(12),
    data: length > 0 ? Buffer.from(await client.read(length)) : Buffer.alloc(0),
  };
}

/** Reads the greeting and sends client flags (fixed newstyle + no zeroes by default). */
export async function greet(client: RawClient, clientFlags = 3): Promise<number> {
  const greeting = await client.read(18);
  expect(greeting.subarray(0, 8)).toEqual(NBDMAGIC);
  expect(greeting.subarray(8, 16)).toEqual(IHAVEOPT);
  const flags = greeting.readUInt16BE(16);
  const reply = Buffer.alloc(4);
  reply.writeUInt32BE(clientFlags, 0);
  client.write(reply);
  return flags;
}

/** Reads INFO replies up to the final reply of an INFO/GO option. */
export async function readInfoReplies(
  client: RawClient,
): Promise<{ infos: Map<number, Buffer>; final: OptionReply }> {
  const infos = new Map<number, Buffer>();
  for (;;) {
    const reply = await readOptionReply(client);
    if (reply.type !== REP.INFO) return { infos, final: reply };
    infos.set(reply.data.readUInt16BE(0), reply.data.subarray(2));
  }
}

/** Connects, negotiates with NBD_OPT_GO, returns the client in transmission and the export size. */
export async function connectTransmission(
  port: number,
  name: string,
): Promise<{ client: RawClient; size: number; flags: number }> {
  const client = await RawClient.connect(port);
  await greet(client);
  client.write(option(OPT.GO, goData(name, [3])));
  const { infos, final } = await readInfoReplies(client);
  expect(final.type).toBe(REP.ACK);
  const exp = infos.get(0)!;
  return { client, size: Number(exp.readBigUInt64BE(0)), flags: exp.readUInt16BE(8) };
}

export function request(
  type: number,
  cookie: bigint,
  offset: bigint | number,
  length: number,
  flags = 0,
  payload?: Buffer,
): Buffer {
  const b = Buffer.alloc(28);
  b.writeUInt32BE(0x25609513, 0);
  b.writeUInt16BE(flags, 4);
  b.writeUInt16BE(type, 6);
  b.writeBigUInt64BE(cookie, 8);
  b.writeBigUInt64BE(BigInt(offset), 16);
  b.writeUInt32BE(length, 24);
  return payload ? Buffer.concat([b, payload]) : b;
}

export interface SimpleReply {
  error: number;
  cookie: bigint;
}

export async function readReply(client: RawClient): Promise<SimpleReply> {
  const b = await client.read(16);
  expect(b.readUInt32BE(0)).toBe(0x67446698);
  return { error: b.readUInt32BE(4), cookie: b.readBigUInt64BE(8) };
}
