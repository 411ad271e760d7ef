import type { CloudsnapBucket } from "../../core/cloud/cloudsnap-bucket.js";
import { newPackId, packObject } from "../../core/cloud/cloudsnap-layout.js";
import type { ChunkLocation } from "./manifest.js";

export interface PackWriterOptions {
  /**
   * A pack is put once it holds this much. Tens of MiB: the requests of a 1 GiB cloudsnap are a few
   * dozen, not one per chunk, and a retried put or a ranged read wastes little.
   */
  targetBytes: number;
  /** Packs put at once; with targetBytes, bounds the memory an upload holds. */
  concurrency: number;
}

export const DEFAULT_PACK_OPTIONS: PackWriterOptions = { targetBytes: 32 * 1024 * 1024, concurrency: 4 };

/**
 * Gathers sealed chunks into packs and puts each full pack while the next fills. A chunk's location
 * is known when it is added; it is in the bucket once finish() resolves. A failed put fails every
 * later call, so an upload stops at the first error (its packs are then orphans, which garbage
 * collection removes: no catalog names them).
 */
export class PackWriter {
  private current: { id: string; parts: Buffer[]; bytes: number } | undefined;
  private readonly inFlight = new Set<Promise<void>>();
  private failure: unknown;
  private readonly written: string[] = [];
  private bytesPut = 0;

  constructor(
    private readonly bucket: CloudsnapBucket,
    private readonly volumeId: string,
    private readonly options: PackWriterOptions = DEFAULT_PACK_OPTIONS,
  ) {}

  /** Every pack put so far. */
  get packs(): readonly string[] {
    return this.written;
  }

  get uploadedBytes(): number {
    return this.bytesPut;
  }

  add(id: string, sealed: Buffer): ChunkLocation {
    this.throwIfFailed();
    this.current ??= { id: newPackId(), parts: [], bytes: 0 };
    const location = { id, pack: this.current.id, offset: this.current.bytes, length: sealed.length };
    this.current.parts.push(sealed);
    this.current.bytes += sealed.length;
    if (this.current.bytes >= this.options.targetBytes) this.putCurrent();
    return location;
  }

  /** Resolves when another pack may be started: callers wait here before reading more chunks. */
  async ready(): Promise<void> {
    while (this.inFlight.size >= this.options.concurrency) await Promise.race(this.inFlight);
    this.throwIfFailed();
  }

  /** Puts the last pack and waits for every put; throws the first failure. */
  async finish(): Promise<void> {
    if (this.current !== undefined) this.putCurrent();
    while (this.inFlight.size > 0) await Promise.race(this.inFlight);
    this.throwIfFailed();
  }

  private putCurrent(): void {
    const pack = this.current!;
    this.current = undefined;
    const put = this.bucket
      .put(packObject(this.volumeId, pack.id), Buffer.concat(pack.parts))
      .then(
        () => {
          this.written.push(pack.id);
          this.bytesPut += pack.bytes;
        },
        (error: unknown) => {
          this.failure ??= error;
        },
      )
      .finally(() => this.inFlight.delete(put));
    this.inFlight.add(put);
  }

  private throwIfFailed(): void {
    if (this.failure !== undefined) throw this.failure;
  }
}
