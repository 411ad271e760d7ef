import { existsSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

export interface NativeExtents {
  /** fallocate(PUNCH_HOLE | KEEP_SIZE): the range reads as zeros and takes no space. */
  punchHole(fd: number, offset: number, length: number): Promise<number>;
  /** lseek(SEEK_DATA): the first data offset at or after `offset`, or -1 if there is none. */
  seekData(fd: number, offset: number): Promise<number>;
  /** lseek(SEEK_HOLE): the first hole at or after `offset` (the end of the file counts as one). */
  seekHole(fd: number, offset: number): Promise<number>;
}

/** The addon is built by `npm install` into build/Release; this file runs from source or from dist/. */
function addonPath(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const candidate = join(dir, "build", "Release", "strata_native.node");
    if (existsSync(candidate)) return candidate;
    const parent = dirname(dir);
    if (parent === dir) {
      throw new Error("strata_native.node not found: run `npm install` to build the native addon");
    }
    dir = parent;
  }
}

export const nativeExtents = createRequire(import.meta.url)(addonPath()) as NativeExtents;
