import { BlockIoError } from "../block-device.js";

/**
 * Counts the reads and writes in flight so that a chain change (snapshot, the end of a merge,
 * revert, close) can wait for them to drain and hold new ones back while it switches layers.
 */
export class IoGate {
  private active = 0;
  private holds = 0;
  private closed = false;
  private readonly heldBack: Array<() => void> = [];
  private readonly drainWaiters: Array<() => void> = [];

  /** Admits one I/O; the caller must call leave() when it ends. */
  async enter(): Promise<void> {
    while (this.holds > 0) await new Promise<void>((resume) => this.heldBack.push(resume));
    if (this.closed) throw new BlockIoError("ESHUTDOWN", "the replica is closed");
    this.active++;
  }

  leave(): void {
    this.active--;
    if (this.active === 0) for (const drained of this.drainWaiters.splice(0)) drained();
  }

  /** Waits until no I/O is in flight and holds new I/O back until the returned function is called. */
  async quiesce(): Promise<() => void> {
    this.holds++;
    if (this.active > 0) await new Promise<void>((drained) => this.drainWaiters.push(drained));
    return () => {
      this.holds--;
      if (this.holds > 0) return;
      for (const resume of this.heldBack.splice(0)) resume();
    };
  }

  /** From now on every I/O fails with ESHUTDOWN, including those held back by a quiesce. */
  close(): void {
    this.closed = true;
  }
}
