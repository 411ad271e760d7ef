/**
 * What a frontend (the NBD server) needs from a volume, local replica or coordinator alike. Offsets and
 * lengths are in bytes and need not be block-aligned; the frontend has already checked them
 * against `sizeBytes`. Failures are BlockIoErrors so a frontend can answer with the right errno.
 */
export interface WriteOptions {
  /** Force unit access: return only once this write is durable. */
  fua: boolean;
}

export interface WriteZeroesOptions extends WriteOptions {
  /** False when the client asked for allocated zeros (NBD_CMD_FLAG_NO_HOLE). */
  mayPunch: boolean;
}

/** A byte range of a device: where data is allocated, changed, or to be copied. */
export interface ByteRange {
  offset: number;
  length: number;
}

export interface BlockDevice {
  readonly sizeBytes: number;
  /** The buffer is the caller's, and may come from agent/io-buffers.ts: give it back when done. */
  read(offset: number, length: number): Promise<Buffer>;
  /** The device holds no reference to `data` once the promise settles: the caller reuses it. */
  write(offset: number, data: Buffer, options: WriteOptions): Promise<void>;
  writeZeroes(offset: number, length: number, options: WriteZeroesOptions): Promise<void>;
  /** The range's contents become unspecified and its space may be given back. */
  trim(offset: number, length: number, options: WriteOptions): Promise<void>;
  /** Every write completed before this call is durable when it resolves. */
  flush(): Promise<void>;
}

/** The errnos the NBD protocol can carry back to a client. */
export type IoErrno =
  | "EPERM"
  | "EIO"
  | "ENOMEM"
  | "EINVAL"
  | "ENOSPC"
  | "EOVERFLOW"
  | "ENOTSUP"
  | "ESHUTDOWN";

/**
 * The numbers those errnos travel as: Linux's, which the NBD protocol fixes as its own, so the
 * replication protocol uses them too and a replica's failure reaches the NBD client unchanged.
 */
export const ERRNO_VALUES = {
  EPERM: 1,
  EIO: 5,
  ENOMEM: 12,
  EINVAL: 22,
  ENOSPC: 28,
  EOVERFLOW: 75,
  ENOTSUP: 95,
  ESHUTDOWN: 108,
} as const satisfies Record<IoErrno, number>;

export class BlockIoError extends Error {
  constructor(
    readonly errno: IoErrno,
    message: string,
  ) {
    super(message);
    this.name = "BlockIoError";
  }
}

/** Maps a Node fs error (or anything else) to the errno a block client should see. */
export function toBlockIoError(error: unknown): BlockIoError {
  if (error instanceof BlockIoError) return error;
  const code = (error as NodeJS.ErrnoException | undefined)?.code;
  const message = error instanceof Error ? error.message : String(error);
  if (code === "ENOSPC" || code === "EDQUOT") return new BlockIoError("ENOSPC", message);
  return new BlockIoError("EIO", message);
}
