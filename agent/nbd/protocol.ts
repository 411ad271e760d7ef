/**
 * NBD protocol constants and the small encoders shared by the handshake and transmission phases.
 * Values and names follow doc/proto.md of the NBD project (fixed newstyle negotiation only).
 */
import { ERRNO_VALUES, type IoErrno } from "../block-device.js";

/** "NBDMAGIC", the first 8 bytes the server sends. */
export const NBDMAGIC = 0x4e42444d41474943n;
/** "IHAVEOPT", sent by the server after NBDMAGIC and by the client before every option. */
export const IHAVEOPT = 0x49484156454f5054n;
/** Magic of every option reply. */
export const OPTION_REPLY_MAGIC = 0x3e889045565a9n;
export const REQUEST_MAGIC = 0x25609513;
export const SIMPLE_REPLY_MAGIC = 0x67446698;

// Handshake flags (server) and client flags.
export const FLAG_FIXED_NEWSTYLE = 1 << 0;
export const FLAG_NO_ZEROES = 1 << 1;
export const FLAG_C_FIXED_NEWSTYLE = 1 << 0;
export const FLAG_C_NO_ZEROES = 1 << 1;
export const KNOWN_CLIENT_FLAGS = FLAG_C_FIXED_NEWSTYLE | FLAG_C_NO_ZEROES;

// Transmission flags.
export const FLAG_HAS_FLAGS = 1 << 0;
export const FLAG_READ_ONLY = 1 << 1;
export const FLAG_SEND_FLUSH = 1 << 2;
export const FLAG_SEND_FUA = 1 << 3;
export const FLAG_SEND_TRIM = 1 << 5;
export const FLAG_SEND_WRITE_ZEROES = 1 << 6;
export const FLAG_CAN_MULTI_CONN = 1 << 8;
/** What every export advertises: a flush on any connection flushes the whole volume. */
export const TRANSMISSION_FLAGS =
  FLAG_HAS_FLAGS |
  FLAG_SEND_FLUSH |
  FLAG_SEND_FUA |
  FLAG_SEND_TRIM |
  FLAG_SEND_WRITE_ZEROES |
  FLAG_CAN_MULTI_CONN;

// Options.
export const OPT_EXPORT_NAME = 1;
export const OPT_ABORT = 2;
export const OPT_LIST = 3;
export const OPT_STARTTLS = 5;
export const OPT_INFO = 6;
export const OPT_GO = 7;
export const OPT_STRUCTURED_REPLY = 8;

// Option reply types.
export const REP_ACK = 1;
export const REP_SERVER = 2;
export const REP_INFO = 3;
const REP_ERR = 0x80000000;
export const REP_ERR_UNSUP = REP_ERR + 1;
export const REP_ERR_POLICY = REP_ERR + 2;
export const REP_ERR_INVALID = REP_ERR + 3;
export const REP_ERR_UNKNOWN = REP_ERR + 6;
export const REP_ERR_SHUTDOWN = REP_ERR + 7;
export const REP_ERR_TOO_BIG = REP_ERR + 9;

// Information types of NBD_REP_INFO.
export const INFO_EXPORT = 0;
export const INFO_NAME = 1;
export const INFO_DESCRIPTION = 2;
export const INFO_BLOCK_SIZE = 3;

// Commands and command flags.
export const CMD_READ = 0;
export const CMD_WRITE = 1;
export const CMD_DISC = 2;
export const CMD_FLUSH = 3;
export const CMD_TRIM = 4;
export const CMD_WRITE_ZEROES = 6;
export const CMD_FLAG_FUA = 1 << 0;
export const CMD_FLAG_NO_HOLE = 1 << 1;

// Size constraints advertised with NBD_INFO_BLOCK_SIZE (the protocol's defaults).
export const MIN_BLOCK_SIZE = 1;
export const PREFERRED_BLOCK_SIZE = 4096;
export const MAX_PAYLOAD = 32 * 1024 * 1024;

/** Strings (export names, descriptions) MUST be no longer than this. */
export const MAX_STRING = 4096;
/** Option data we buffer; larger options are discarded as they arrive and refused. */
export const MAX_OPTION_DATA = 16 * 1024;

export const REQUEST_HEADER_SIZE = 28;
export const SIMPLE_REPLY_SIZE = 16;

/** NBD error values: fixed by the protocol (Linux's numbering), not the host's errno numbering. */
export const NBD_ERRNO: Readonly<Record<IoErrno, number>> = ERRNO_VALUES;

export const NBD_EINVAL = NBD_ERRNO.EINVAL;
export const NBD_ENOSPC = NBD_ERRNO.ENOSPC;
export const NBD_ESHUTDOWN = NBD_ERRNO.ESHUTDOWN;

/** A simple reply's header: the error and the request's cookie, as two 32-bit halves. */
export interface SimpleReply {
  error: number;
  cookieHi: number;
  cookieLo: number;
}

/** Writes a simple reply's header at `at` (read data, if any, follows it); returns its size. */
export function encodeSimpleReply(target: Buffer, at: number, reply: SimpleReply): number {
  target.writeUInt32BE(SIMPLE_REPLY_MAGIC, at);
  target.writeUInt32BE(reply.error, at + 4);
  target.writeUInt32BE(reply.cookieHi, at + 8);
  target.writeUInt32BE(reply.cookieLo, at + 12);
  return SIMPLE_REPLY_SIZE;
}

/** The first 18 bytes the server sends: NBDMAGIC, IHAVEOPT, handshake flags. */
export function encodeGreeting(): Buffer {
  const b = Buffer.alloc(18);
  b.writeBigUInt64BE(NBDMAGIC, 0);
  b.writeBigUInt64BE(IHAVEOPT, 8);
  b.writeUInt16BE(FLAG_FIXED_NEWSTYLE | FLAG_NO_ZEROES, 16);
  return b;
}

/** One option reply: magic, option, reply type, length, data. */
export function encodeOptionReply(option: number, type: number, data?: Buffer): Buffer {
  const length = data?.length ?? 0;
  const b = Buffer.alloc(20 + length);
  b.writeBigUInt64BE(OPTION_REPLY_MAGIC, 0);
  b.writeUInt32BE(option >>> 0, 8);
  b.writeUInt32BE(type >>> 0, 12);
  b.writeUInt32BE(length, 16);
  if (data) data.copy(b, 20);
  return b;
}

/** An error reply carrying a human-readable message (allowed for every error reply type). */
export function encodeOptionError(option: number, type: number, message: string): Buffer {
  return encodeOptionReply(option, type, Buffer.from(message.slice(0, 1024), "utf8"));
}

/** NBD_REP_SERVER data: name length, name (no description: listing does not open exports). */
export function encodeServerReply(name: string): Buffer {
  const nameBytes = Buffer.from(name, "utf8");
  const b = Buffer.alloc(4 + nameBytes.length);
  b.writeUInt32BE(nameBytes.length, 0);
  nameBytes.copy(b, 4);
  return b;
}

export function encodeInfoExport(sizeBytes: number, flags: number): Buffer {
  const b = Buffer.alloc(12);
  b.writeUInt16BE(INFO_EXPORT, 0);
  b.writeBigUInt64BE(BigInt(sizeBytes), 2);
  b.writeUInt16BE(flags, 10);
  return b;
}

export function encodeInfoString(type: typeof INFO_NAME | typeof INFO_DESCRIPTION, value: string): Buffer {
  const bytes = Buffer.from(value, "utf8").subarray(0, MAX_STRING);
  const b = Buffer.alloc(2 + bytes.length);
  b.writeUInt16BE(type, 0);
  bytes.copy(b, 2);
  return b;
}

export function encodeInfoBlockSize(): Buffer {
  const b = Buffer.alloc(14);
  b.writeUInt16BE(INFO_BLOCK_SIZE, 0);
  b.writeUInt32BE(MIN_BLOCK_SIZE, 2);
  b.writeUInt32BE(PREFERRED_BLOCK_SIZE, 6);
  b.writeUInt32BE(MAX_PAYLOAD, 10);
  return b;
}

/** The reply to NBD_OPT_EXPORT_NAME: size, transmission flags, and 124 zeroes unless NO_ZEROES. */
export function encodeExportNameReply(sizeBytes: number, flags: number, noZeroes: boolean): Buffer {
  const b = Buffer.alloc(noZeroes ? 10 : 134);
  b.writeBigUInt64BE(BigInt(sizeBytes), 0);
  b.writeUInt16BE(flags, 8);
  return b;
}
