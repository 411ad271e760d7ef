import type { BlockDevice } from "../../agent/block-device.js";
import { pattern } from "../replication/harness.js";
import { random } from "../store/helpers.js";

/**
 * Concurrent writers over fixed slots. Each writer owns its own slots, so two writes to one slot
 * are never in flight together and the last acknowledged write of each slot is known exactly.
 */
export class WriteLoad {
  /** slot → seed of the last acknowledged write there. */
  readonly acked = new Map<number, number>();
  readonly errors: unknown[] = [];
  private stopping = false;
  private running: Promise<void> | undefined;
  private writes = 0;
  private readonly waiters: { count: number; resolve: () => void }[] = [];

  constructor(
    private readonly device: BlockDevice,
    readonly slotBytes: number,
    readonly slots: number,
    private readonly writers = 4,
    /** Where slot 0 starts. */
    readonly baseOffset = 0,
  ) {}

  offsetOf(slot: number): number {
    return this.baseOffset + slot * this.slotBytes;
  }

  start(): this {
    this.running = Promise.all(Array.from({ length: this.writers }, (_, i) => this.writer(i))).then(() => {});
    return this;
  }

  /** Resolves once `count` writes in all have been acknowledged. */
  acknowledged(count: number): Promise<void> {
    if (this.writes >= count) return Promise.resolve();
    return new Promise((resolve) => this.waiters.push({ count, resolve }));
  }

  async stop(): Promise<void> {
    this.stopping = true;
    await this.running;
  }

  get count(): number {
    return this.writes;
  }

  private async writer(index: number): Promise<void> {
    const rng = random(index + 1);
    const owned = Math.ceil((this.slots - index) / this.writers);
    let seed = index * 1_000_000;
    while (!this.stopping && this.errors.length === 0) {
      const slot = index + this.writers * rng.int(owned);
      seed++;
      try {
        await this.device.write(this.offsetOf(slot), pattern(this.slotBytes, seed), { fua: false });
      } catch (error) {
        this.errors.push(error);
        return;
      }
      this.acked.set(slot, seed);
      this.writes++;
      for (const waiter of this.waiters.filter((w) => w.count <= this.writes)) {
        this.waiters.splice(this.waiters.indexOf(waiter), 1);
        waiter.resolve();
      }
    }
  }

  /** Every acknowledged write, as `read` sees it: the slots that differ. */
  async missing(read: (offset: number, length: number) => Promise<Buffer>): Promise<number[]> {
    const wrong: number[] = [];
    for (const [slot, seed] of this.acked) {
      const data = await read(this.offsetOf(slot), this.slotBytes);
      if (!data.equals(pattern(this.slotBytes, seed))) wrong.push(slot);
    }
    return wrong;
  }
}
