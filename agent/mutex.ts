/** A FIFO async mutex: control-plane operations on one volume run one at a time. */
export class Mutex {
  private tail: Promise<void> = Promise.resolve();
  private holders = 0;

  /** True while some work runs or waits: background chores skip a busy volume rather than queue. */
  get busy(): boolean {
    return this.holders > 0;
  }

  async run<T>(work: () => Promise<T>): Promise<T> {
    this.holders++;
    const previous = this.tail;
    let release!: () => void;
    this.tail = new Promise<void>((resolve) => {
      release = resolve;
    });
    await previous;
    try {
      return await work();
    } finally {
      this.holders--;
      release();
    }
  }
}
