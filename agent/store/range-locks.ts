/** A held or requested block range, inclusive at both ends. */
export interface BlockRange {
  readonly first: number;
  readonly last: number;
}

interface Waiter {
  readonly range: BlockRange;
  grant(): void;
}

function overlaps(a: BlockRange, b: BlockRange): boolean {
  return a.first <= b.last && b.first <= a.last;
}

/**
 * Exclusive locks on block ranges, so that a read-modify-write of an edge block, a TRIM and a
 * merge copy into the head never interleave with another mutation of the same blocks. Requests
 * are granted in arrival order among overlapping ranges, so a merge chunk cannot be starved by
 * a stream of writes. The number of ranges is bounded by the I/O depth, so lists are enough.
 */
export class RangeLocks {
  private readonly held: BlockRange[] = [];
  private readonly waiting: Waiter[] = [];

  /** Resolves with the range to pass to release() once no earlier overlapping range is held or waiting. */
  acquire(first: number, last: number): Promise<BlockRange> {
    const range: BlockRange = { first, last };
    if (!this.conflicts(range, this.waiting.length)) {
      this.held.push(range);
      return Promise.resolve(range);
    }
    return new Promise((resolve) => this.waiting.push({ range, grant: () => resolve(range) }));
  }

  release(range: BlockRange): void {
    this.held.splice(this.held.indexOf(range), 1);
    for (let i = 0; i < this.waiting.length; ) {
      const waiter = this.waiting[i]!;
      if (this.conflicts(waiter.range, i)) {
        i++;
        continue;
      }
      this.waiting.splice(i, 1);
      this.held.push(waiter.range);
      waiter.grant();
    }
  }

  /** Whether `range` overlaps a held range or one of the first `waitersAhead` waiting ranges. */
  private conflicts(range: BlockRange, waitersAhead: number): boolean {
    for (const other of this.held) if (overlaps(range, other)) return true;
    for (let i = 0; i < waitersAhead; i++) if (overlaps(range, this.waiting[i]!.range)) return true;
    return false;
  }
}
