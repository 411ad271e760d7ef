import {
  type BlockDevice,
  BlockIoError,
  type IoErrno,
  type WriteOptions,
  type WriteZeroesOptions,
} from "../../agent/block-device.js";

export type MemoryOp = "read" | "write" | "writeZeroes" | "trim" | "flush";

/**
 * A Buffer-backed BlockDevice for tests. Every call is bounds-checked (a frontend that lets a bad
 * request through shows up as a thrown BlockIoError, never as corrupted memory), counted, and can
 * be made to fail or to wait on a gate.
 */
export class MemoryDevice implements BlockDevice {
  readonly data: Buffer;
  readonly calls: Record<MemoryOp, number> = { read: 0, write: 0, writeZeroes: 0, trim: 0, flush: 0 };
  readonly fuaWrites: number[] = [];
  readonly zeroesCalls: { offset: number; length: number; mayPunch: boolean; fua: boolean }[] = [];
  /** Calls that reached the device with bad arguments (should stay 0: the frontend checks first). */
  outOfBounds = 0;
  /** When set, the next matching call fails with this errno. */
  private failure: { op: MemoryOp; errno: IoErrno } | undefined;
  private gates = new Map<number, Promise<void>>();

  constructor(readonly sizeBytes: number) {
    this.data = Buffer.alloc(sizeBytes);
  }

  /** Makes the next call of `op` fail with `errno`. */
  failNext(op: MemoryOp, errno: IoErrno): void {
    this.failure = { op, errno };
  }

  /** Holds every request starting at `offset` until the returned function is called. */
  hold(offset: number): () => void {
    let open!: () => void;
    this.gates.set(
      offset,
      new Promise((resolve) => {
        open = resolve;
      }),
    );
    return () => {
      this.gates.delete(offset);
      open();
    };
  }

  async read(offset: number, length: number): Promise<Buffer> {
    await this.enter("read", offset, length);
    return Buffer.from(this.data.subarray(offset, offset + length));
  }

  async write(offset: number, data: Buffer, options: WriteOptions): Promise<void> {
    await this.enter("write", offset, data.length);
    data.copy(this.data, offset);
    if (options.fua) this.fuaWrites.push(offset);
  }

  async writeZeroes(offset: number, length: number, options: WriteZeroesOptions): Promise<void> {
    await this.enter("writeZeroes", offset, length);
    this.zeroesCalls.push({ offset, length, mayPunch: options.mayPunch, fua: options.fua });
    this.data.fill(0, offset, offset + length);
  }

  async trim(offset: number, length: number, _options: WriteOptions): Promise<void> {
    await this.enter("trim", offset, length);
    // Trimmed contents are unspecified; zero them like a thin volume reading back a hole.
    this.data.fill(0, offset, offset + length);
  }

  async flush(): Promise<void> {
    await this.enter("flush", 0, 0);
  }

  private async enter(op: MemoryOp, offset: number, length: number): Promise<void> {
    this.calls[op]++;
    const gate = this.gates.get(offset);
    if (gate !== undefined && op !== "flush") await gate;
    if (this.failure?.op === op) {
      const { errno } = this.failure;
      this.failure = undefined;
      throw new BlockIoError(errno, `injected ${errno} on ${op}`);
    }
    if (
      !Number.isSafeInteger(offset) ||
      !Number.isSafeInteger(length) ||
      offset < 0 ||
      length < 0 ||
      offset + length > this.sizeBytes
    ) {
      this.outOfBounds++;
      throw new BlockIoError(op === "read" || op === "trim" ? "EINVAL" : "ENOSPC", `${op} out of bounds`);
    }
  }
}
