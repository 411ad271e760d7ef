import { type FileHandle, open, rename } from "node:fs/promises";
import { dirname } from "node:path";

/** fsync a directory so a rename or create inside it survives a crash. */
export async function syncDirectory(dir: string): Promise<void> {
  const handle = await open(dir, "r");
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/**
 * Replaces `path` with what `write` puts in a new file, so that after a crash the file holds
 * either the old or the new contents, never a mix: write a temporary file, fsync it, rename it
 * over, fsync the directory.
 */
export async function replaceFileAtomic(path: string, write: (file: FileHandle) => Promise<void>) {
  const temporary = `${path}.tmp`;
  const handle = await open(temporary, "w");
  try {
    await write(handle);
    await handle.sync();
  } finally {
    await handle.close();
  }
  await rename(temporary, path);
  await syncDirectory(dirname(path));
}

/** Replaces `path` with `value` as JSON (see replaceFileAtomic). */
export function writeJsonAtomic(path: string, value: unknown): Promise<void> {
  return replaceFileAtomic(path, (file) => file.writeFile(`${JSON.stringify(value, null, 2)}\n`));
}
