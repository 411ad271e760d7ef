/**
 * Reusable memory for large I/O payloads (NBD and replication reads and writes of 64 KiB up to
 * 32 MiB: request payloads assembled from socket chunks, read results, replies). A fresh
 * megabyte-sized Buffer is a fresh mmap: every page faults on first touch, is unmapped when the
 * garbage collector frees it, and its external memory drives extra GC cycles. At a few thousand
 * 1 MiB requests a second that cost more main-thread time than the requests' own work, so the
 * data path borrows payload buffers from here and gives them back when the bytes have left.
 *
 * Rule: a borrowed buffer is given back exactly once, by whoever holds it last, only after every
 * consumer (a pwrite, a socket write) has finished with it.
 */

/** Smaller payloads come from Node's own slab allocator, which already reuses its memory. */
const POOLED_MIN = 64 * 1024;
/** NBD's maximum payload; larger requests are refused before they get here. */
const POOLED_MAX = 32 * 1024 * 1024;
/** Memory kept idle across all size classes: enough for iodepth 32 of 1 MiB, several times over. */
const IDLE_BUDGET_BYTES = 128 * 1024 * 1024;

const idle = new Map<number, ArrayBuffer[]>();
/** Memory that came from this pool, so a foreign buffer is never put into it. */
const owned = new WeakSet<ArrayBuffer>();
/** Memory waiting in `idle`: giving it back twice would lend it to two borrowers at once. */
const waiting = new WeakSet<ArrayBuffer>();
let idleBytes = 0;

function sizeClass(length: number): number {
  return 2 ** Math.ceil(Math.log2(length));
}

/** A buffer of exactly `length` bytes with unspecified contents. */
export function borrowIoBuffer(length: number): Buffer {
  if (length < POOLED_MIN || length > POOLED_MAX) return Buffer.allocUnsafe(length);
  const size = sizeClass(length);
  const reused = idle.get(size)?.pop();
  if (reused !== undefined) {
    waiting.delete(reused);
    idleBytes -= size;
    return Buffer.from(reused, 0, length);
  }
  const memory = new ArrayBuffer(size);
  owned.add(memory);
  return Buffer.from(memory, 0, length);
}

/** Gives a buffer from borrowIoBuffer back; other buffers are ignored (the GC takes them). */
export function returnIoBuffer(buffer: Buffer): void {
  const memory = buffer.buffer;
  if (!(memory instanceof ArrayBuffer) || !owned.has(memory)) return;
  if (waiting.has(memory)) throw new Error("an I/O buffer was given back twice");
  if (idleBytes + memory.byteLength > IDLE_BUDGET_BYTES) return;
  let list = idle.get(memory.byteLength);
  if (list === undefined) {
    list = [];
    idle.set(memory.byteLength, list);
  }
  list.push(memory);
  waiting.add(memory);
  idleBytes += memory.byteLength;
}
