/**
 * The bytes received on one connection and not yet parsed, kept as the list of chunks the socket
 * delivered. Consuming never concatenates the whole queue: a read that falls inside one chunk is a
 * zero-copy view, and one that spans chunks copies exactly the bytes it returns, so parsing a
 * stream costs time linear in its length however it was split.
 */
export class ByteQueue {
  private chunks: Buffer[] = [];
  /** Index in `chunks` of the first chunk with unread bytes. */
  private first = 0;
  /** Read position inside `chunks[first]`. */
  private offset = 0;
  private total = 0;

  get length(): number {
    return this.total;
  }

  push(chunk: Buffer): void {
    if (chunk.length === 0) return;
    this.chunks.push(chunk);
    this.total += chunk.length;
  }

  /**
   * Where the next `n` bytes can be read in place: the first chunk and the offset in it when they
   * are contiguous there, otherwise undefined (copy them with `copyTo`). Call only when length >= n.
   */
  peekContiguous(n: number): Buffer | undefined {
    const head = this.chunks[this.first];
    return head !== undefined && head.length - this.offset >= n ? head : undefined;
  }

  /** The offset inside the buffer returned by peekContiguous. */
  get headOffset(): number {
    return this.offset;
  }

  /** Copies the next `n` bytes into `target` without consuming them. Call only when length >= n. */
  copyTo(target: Buffer, n: number): void {
    let copied = 0;
    let index = this.first;
    let start = this.offset;
    while (copied < n) {
      const chunk = this.chunks[index]!;
      const count = Math.min(chunk.length - start, n - copied);
      chunk.copy(target, copied, start, start + count);
      copied += count;
      index++;
      start = 0;
    }
  }

  /**
   * Removes and returns the next `n` bytes (a view when contiguous, else a copy in memory from
   * `allocate`). Call only when length >= n.
   */
  take(n: number, allocate: (n: number) => Buffer = Buffer.allocUnsafe): Buffer {
    const head = this.chunks[this.first];
    if (head !== undefined && head.length - this.offset >= n) {
      const view = head.subarray(this.offset, this.offset + n);
      this.skip(n);
      return view;
    }
    const out = allocate(n);
    this.copyTo(out, n);
    this.skip(n);
    return out;
  }

  /** Discards up to `n` bytes; returns how many were discarded. */
  skip(n: number): number {
    let left = Math.min(n, this.total);
    const discarded = left;
    while (left > 0) {
      const chunk = this.chunks[this.first]!;
      const available = chunk.length - this.offset;
      if (available > left) {
        this.offset += left;
        break;
      }
      left -= available;
      this.first++;
      this.offset = 0;
    }
    this.total -= discarded;
    this.compact();
    return discarded;
  }

  /** Drops references to consumed chunks so they can be collected. */
  private compact(): void {
    if (this.total === 0) {
      this.chunks = [];
      this.first = 0;
      this.offset = 0;
    } else if (this.first >= 32 && this.first * 2 >= this.chunks.length) {
      this.chunks = this.chunks.slice(this.first);
      this.first = 0;
    }
  }
}
