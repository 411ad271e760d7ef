import { BlockIoError } from "../block-device.js";
import type { SpaceAllocator } from "../pool.js";

export type { SpaceAllocator };

/** Reserves pool space for blocks about to be allocated, or fails the operation with ENOSPC. */
export function reserveSpace(allocator: SpaceAllocator, bytes: number): void {
  if (bytes > 0 && !allocator.tryReserve(bytes)) {
    throw new BlockIoError("ENOSPC", `the pool has no room for ${bytes} more bytes`);
  }
}

/**
 * For copies whose blocks the pool already counts: a merge moves a snapshot's blocks into its
 * child and gives back only what is left in the snapshot when its files are deleted.
 */
export const ALREADY_ACCOUNTED: SpaceAllocator = {
  tryReserve: () => true,
  adopt: () => undefined,
  release: () => undefined,
};
