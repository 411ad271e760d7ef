/**
 * Fixed newstyle handshake and option haggling. Runs once per connection, before transmission;
 * it is not performance sensitive, so it is written as a plain async sequence over `HandshakeIo`.
 */
import type { ExportLease, ExportRegistry } from "../exports.js";
import type { Logger } from "../log.js";
import {
  encodeExportNameReply,
  encodeGreeting,
  encodeInfoBlockSize,
  encodeInfoExport,
  encodeInfoString,
  encodeOptionError,
  encodeOptionReply,
  encodeServerReply,
  FLAG_C_NO_ZEROES,
  IHAVEOPT,
  INFO_DESCRIPTION,
  INFO_NAME,
  KNOWN_CLIENT_FLAGS,
  MAX_OPTION_DATA,
  MAX_STRING,
  OPT_ABORT,
  OPT_EXPORT_NAME,
  OPT_GO,
  OPT_INFO,
  OPT_LIST,
  REP_ACK,
  REP_ERR_INVALID,
  REP_ERR_TOO_BIG,
  REP_ERR_UNKNOWN,
  REP_ERR_UNSUP,
  REP_INFO,
  REP_SERVER,
  TRANSMISSION_FLAGS,
} from "./protocol.js";

/** What the handshake needs from its connection. */
export interface HandshakeIo {
  /** Resolves with exactly `n` bytes; rejects if the connection ends first. */
  read(n: number): Promise<Buffer>;
  /** Discards `n` bytes as they arrive, without buffering them. */
  discard(n: number): Promise<void>;
  write(data: Buffer): void;
}

/** How option haggling ended. */
export type HandshakeResult =
  | { kind: "transmission"; lease: ExportLease }
  /** The client aborted, or the server must hard-disconnect (reason is logged). */
  | { kind: "close"; reason?: string };

/** Sends the greeting, reads the client flags, and answers options until transmission or close. */
export async function negotiate(
  io: HandshakeIo,
  registry: ExportRegistry,
  log: Logger,
): Promise<HandshakeResult> {
  io.write(encodeGreeting());
  const clientFlags = (await io.read(4)).readUInt32BE(0);
  if ((clientFlags & ~KNOWN_CLIENT_FLAGS) !== 0) {
    return { kind: "close", reason: `unknown client flags 0x${clientFlags.toString(16)}` };
  }
  const noZeroes = (clientFlags & FLAG_C_NO_ZEROES) !== 0;

  for (;;) {
    const header = await io.read(16);
    if (header.readBigUInt64BE(0) !== IHAVEOPT) return { kind: "close", reason: "bad option magic" };
    const option = header.readUInt32BE(8);
    const length = header.readUInt32BE(12);

    if (length > MAX_OPTION_DATA) {
      if (option === OPT_EXPORT_NAME) return { kind: "close", reason: `export name of ${length} bytes` };
      // Skip the data as it streams in (nothing is buffered), then refuse the option.
      await io.discard(length);
      log.warn({ option, length }, "nbd: oversized option refused");
      io.write(encodeOptionError(option, REP_ERR_TOO_BIG, `option data over ${MAX_OPTION_DATA} bytes`));
      continue;
    }
    const data = length > 0 ? await io.read(length) : Buffer.alloc(0);

    switch (option) {
      case OPT_EXPORT_NAME: {
        const name = data.toString("utf8");
        const lease = length <= MAX_STRING ? registry.open(name) : undefined;
        // NBD_OPT_EXPORT_NAME cannot carry an error: an unknown export ends the session.
        if (lease === undefined) return { kind: "close", reason: `unknown export ${JSON.stringify(name)}` };
        io.write(encodeExportNameReply(lease.device.sizeBytes, TRANSMISSION_FLAGS, noZeroes));
        return { kind: "transmission", lease };
      }
      case OPT_ABORT:
        io.write(encodeOptionReply(option, REP_ACK));
        return { kind: "close" };
      case OPT_LIST: {
        if (length !== 0) {
          io.write(encodeOptionError(option, REP_ERR_INVALID, "NBD_OPT_LIST takes no data"));
          break;
        }
        for (const name of registry.names()) {
          io.write(encodeOptionReply(option, REP_SERVER, encodeServerReply(name)));
        }
        io.write(encodeOptionReply(option, REP_ACK));
        break;
      }
      case OPT_INFO:
      case OPT_GO: {
        const lease = answerInfo(io, registry, option, data);
        if (lease === undefined) break;
        if (option === OPT_GO) return { kind: "transmission", lease };
        lease.release();
        break;
      }
      default:
        // Includes NBD_OPT_STARTTLS and NBD_OPT_STRUCTURED_REPLY (simple replies only) and the
        // metadata-context options, which need structured replies.
        io.write(encodeOptionError(option, REP_ERR_UNSUP, "option not supported"));
    }
  }
}

/**
 * Answers NBD_OPT_INFO / NBD_OPT_GO: the info replies and the final ACK, or an error reply.
 * Returns the opened lease on success (the caller keeps it for GO and releases it for INFO).
 */
function answerInfo(
  io: HandshakeIo,
  registry: ExportRegistry,
  option: number,
  data: Buffer,
): ExportLease | undefined {
  // Data: u32 name length, name, u16 number of info requests, u16 × n requests.
  const nameLength = data.length >= 6 ? data.readUInt32BE(0) : -1;
  if (nameLength < 0 || nameLength > data.length - 6) {
    io.write(encodeOptionError(option, REP_ERR_INVALID, "malformed export name length"));
    return undefined;
  }
  const count = data.readUInt16BE(4 + nameLength);
  if (data.length !== 6 + nameLength + 2 * count) {
    io.write(encodeOptionError(option, REP_ERR_INVALID, "malformed information request list"));
    return undefined;
  }
  if (nameLength > MAX_STRING) {
    io.write(encodeOptionError(option, REP_ERR_INVALID, "export name too long"));
    return undefined;
  }
  const name = data.toString("utf8", 4, 4 + nameLength);
  let wantName = false;
  let wantDescription = false;
  for (let i = 0; i < count; i++) {
    const type = data.readUInt16BE(6 + nameLength + 2 * i);
    if (type === INFO_NAME) wantName = true;
    else if (type === INFO_DESCRIPTION) wantDescription = true;
  }

  const lease = registry.open(name);
  if (lease === undefined) {
    io.write(encodeOptionError(option, REP_ERR_UNKNOWN, `unknown export ${JSON.stringify(name)}`));
    return undefined;
  }
  io.write(encodeOptionReply(option, REP_INFO, encodeInfoExport(lease.device.sizeBytes, TRANSMISSION_FLAGS)));
  if (wantName) io.write(encodeOptionReply(option, REP_INFO, encodeInfoString(INFO_NAME, lease.name)));
  if (wantDescription && lease.description !== "") {
    io.write(encodeOptionReply(option, REP_INFO, encodeInfoString(INFO_DESCRIPTION, lease.description)));
  }
  // Always sent: our constraints are the protocol defaults, so clients that did not ask lose nothing.
  io.write(encodeOptionReply(option, REP_INFO, encodeInfoBlockSize()));
  io.write(encodeOptionReply(option, REP_ACK));
  return lease;
}
