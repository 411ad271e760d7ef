/**
 * The replication protocol's wire constants: frame layout, frame types, flags, status codes and
 * limits. Every frame (request, reply, handshake, error) has the same fixed 40-byte header,
 * followed by the volume id (UTF-8, `volumeIdLength` bytes) and the payload. All integers are
 * big-endian; 64-bit fields carry numbers ≤ 2^53 − 1 (JavaScript's exact integers).
 *
 * | offset | size | field                                                        |
 * | ------ | ---- | ------------------------------------------------------------ |
 * | 0      | 4    | magic 0x53545250 ("STRP")                                    |
 * | 4      | 1    | version (1)                                                  |
 * | 5      | 1    | frame type                                                   |
 * | 6      | 2    | flags (FUA, MAY_PUNCH)                                       |
 * | 8      | 4    | request id (chosen by the client, echoed by the reply)       |
 * | 12     | 2    | status (replies and ERROR frames; 0 in requests)             |
 * | 14     | 1    | volume id length in bytes (0–255)                            |
 * | 15     | 1    | reserved, 0                                                  |
 * | 16     | 8    | epoch (requests: the sender's; replies: the replica's)       |
 * | 24     | 8    | offset in bytes                                              |
 * | 32     | 4    | length in bytes (READ / WRITE_ZEROES / TRIM range)           |
 * | 36     | 4    | payload length in bytes                                      |
 * | 40     | n    | volume id, then payload                                      |
 */
import { ERRNO_VALUES, type IoErrno } from "../../block-device.js";

export const FRAME_MAGIC = 0x53545250;
export const PROTOCOL_VERSION = 1;
export const HEADER_SIZE = 40;

/** The length field is one byte; volume ids are UUIDs (36 bytes) in practice. */
export const MAX_VOLUME_ID_BYTES = 255;
/** The largest READ or WRITE: the NBD frontend's own maximum, so one NBD request is one frame. */
export const MAX_IO_BYTES = 32 * 1024 * 1024;
/** Payloads other than I/O data (snapshot names, state JSON) are tiny; this bounds them. */
export const MAX_CONTROL_PAYLOAD = 64 * 1024;
/**
 * Before authentication only handshake frames (a 32-byte nonce or proof) are legal, so an
 * unauthenticated peer can make the server buffer at most this much.
 */
export const MAX_HANDSHAKE_PAYLOAD = 64;

/** Frame types. A reply has the request's type with REPLY_BIT set. */
export const FrameType = {
  /** client → server: the client's nonce. */
  HELLO: 1,
  /** server → client: the server's nonce and its proof of the secret. */
  CHALLENGE: 2,
  /** client → server: the client's proof of the secret. */
  AUTH: 3,
  /** server → client: the client is authenticated; requests may follow. */
  AUTH_OK: 4,
  /** Either side, just before it closes the connection: status + a UTF-8 reason as payload. */
  ERROR: 5,
  READ: 16,
  WRITE: 17,
  WRITE_ZEROES: 18,
  TRIM: 19,
  FLUSH: 20,
  SNAPSHOT: 21,
  GET_STATE: 22,
  SET_EPOCH: 23,
  // Replica management (agent to agent; JSON payloads, see replica-admin.ts).
  /** Creates the volume's replica here (header epoch = its first epoch); idempotent. */
  CREATE_REPLICA: 32,
  /** Deletes the volume's replica if it is the one named; idempotent. */
  DELETE_REPLICA: 33,
  /** Sets or clears the rebuild mark (write-only replica); fenced by the header epoch. */
  SET_REBUILDING: 34,
  /** Lists the replicas here (all, or the header volume's). */
  LIST_REPLICAS: 35,
  /** One page of the replica's allocated runs from the header offset on. */
  ALLOCATED_RUNS: 36,
  /**
   * One page, from the header offset on, of the regions the replica changed at or after the
   * payload's epoch (dirty-region tracking): what a resync copies. Answered by a rebuilding
   * replica too, since its own changes are what a resync of it must undo.
   */
  CHANGED_RUNS: 37,
  // Chain changes a coordinator fans out to every replica; JSON payloads, fenced by the header epoch.
  /** Grows the replica to the payload's size. */
  RESIZE_REPLICA: 38,
  /** Deletes the payload's snapshot (its layer merges into the next one up). */
  DELETE_SNAPSHOT: 39,
  /** Makes the live view the payload's snapshot again (no I/O may run meanwhile). */
  REVERT_REPLICA: 40,
  /** One page, from the header offset on, of the ranges where the payload's snapshot holds data. */
  SNAPSHOT_RUNS: 41,
  /** The payload's snapshot's bytes in the header's range; the reply's payload is the data. */
  READ_SNAPSHOT: 42,
} as const;

export type RequestType =
  | typeof FrameType.READ
  | typeof FrameType.WRITE
  | typeof FrameType.WRITE_ZEROES
  | typeof FrameType.TRIM
  | typeof FrameType.FLUSH
  | typeof FrameType.SNAPSHOT
  | typeof FrameType.GET_STATE
  | typeof FrameType.SET_EPOCH
  | typeof FrameType.CREATE_REPLICA
  | typeof FrameType.DELETE_REPLICA
  | typeof FrameType.SET_REBUILDING
  | typeof FrameType.LIST_REPLICAS
  | typeof FrameType.ALLOCATED_RUNS
  | typeof FrameType.CHANGED_RUNS
  | typeof FrameType.RESIZE_REPLICA
  | typeof FrameType.DELETE_SNAPSHOT
  | typeof FrameType.REVERT_REPLICA
  | typeof FrameType.SNAPSHOT_RUNS
  | typeof FrameType.READ_SNAPSHOT;

export const REPLY_BIT = 0x80;

export const FrameFlag = {
  /** Force unit access: the reply is sent only once the data is durable. */
  FUA: 1,
  /** WRITE_ZEROES may deallocate (clear for NBD_CMD_FLAG_NO_HOLE). */
  MAY_PUNCH: 2,
} as const;

/**
 * Reply statuses. The I/O errnos use the Linux (and NBD) numbering so a coordinator can pass a
 * replica's failure straight on to its NBD client; the protocol's own refusals start at 1000 so
 * they can never be mistaken for an errno.
 */
export const Status = {
  OK: 0,
  ...ERRNO_VALUES,
  /** The request's epoch is not the replica's (stale or future): the sender is fenced. */
  STALE_EPOCH: 1001,
  /** The server holds no replica of that volume. */
  UNKNOWN_VOLUME: 1002,
  /** The frame was well formed but the request is not (wrong type, flags, lengths, payload). */
  BAD_REQUEST: 1003,
  /** The peer could not prove it holds the cluster secret. */
  AUTH_FAILED: 1004,
  /** The replica is being rebuilt: it takes writes but its data is not complete enough to read. */
  NOT_IN_SYNC: 1005,
  /** CREATE_REPLICA: another replica of that volume (another replica id) is already here. */
  REPLICA_EXISTS: 1006,
  /** DELETE_REPLICA: the replica belongs to a volume this node manages itself (delete that instead). */
  REPLICA_IN_USE: 1007,
  /** The server does not manage replicas (a bare replica server): no CREATE/DELETE/LIST. */
  NOT_MANAGED: 1008,
  /** DELETE_SNAPSHOT, REVERT_REPLICA: the replica has no snapshot with that id. */
  UNKNOWN_SNAPSHOT: 1009,
} as const;

export type StatusCode = (typeof Status)[keyof typeof Status];

export const ERRNO_STATUS: Readonly<Record<IoErrno, number>> = ERRNO_VALUES;

export const STATUS_ERRNO: ReadonlyMap<number, IoErrno> = new Map(
  Object.entries(ERRNO_STATUS).map(([errno, status]) => [status, errno as IoErrno]),
);
