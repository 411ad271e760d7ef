import type { BlockDevice } from "./block-device.js";

/** An export opened by one NBD connection; `release` is called exactly once when it closes. */
export interface ExportLease {
  readonly name: string;
  readonly description: string;
  readonly device: BlockDevice;
  release(): void;
}

/** The volumes a frontend may serve. Only attached volumes are exported. */
export interface ExportRegistry {
  names(): string[];
  /** undefined when no such export exists (the client gets NBD_REP_ERR_UNKNOWN). */
  open(name: string): ExportLease | undefined;
}

/** What holds an export's open connections: a volume in use cannot be detached or deleted. */
export interface LeaseCount {
  leases: number;
}

/** A lease counted on `holder` while it is open; releasing twice counts once. */
export function countedLease(
  name: string,
  description: string,
  device: BlockDevice,
  holder: LeaseCount,
): ExportLease {
  holder.leases++;
  let released = false;
  return {
    name,
    description,
    device,
    release: () => {
      if (released) return;
      released = true;
      holder.leases--;
    },
  };
}
