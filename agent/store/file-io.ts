import type { FileHandle } from "node:fs/promises";

/** pread until `buffer` is full: even regular files may return short counts (signals, huge reads). */
export async function readFully(file: FileHandle, buffer: Buffer, position: number): Promise<void> {
  let done = 0;
  while (done < buffer.length) {
    const { bytesRead } = await file.read(buffer, done, buffer.length - done, position + done);
    if (bytesRead === 0) throw new Error(`unexpected end of file at offset ${position + done}`);
    done += bytesRead;
  }
}

export async function writeFully(file: FileHandle, buffer: Buffer, position: number): Promise<void> {
  let done = 0;
  while (done < buffer.length) {
    const { bytesWritten } = await file.write(buffer, done, buffer.length - done, position + done);
    done += bytesWritten;
  }
}

/**
 * One pwritev of several buffers laid end to end at `position` (the edge blocks of a
 * read-modify-write around the caller's data, without copying the data).
 */
export async function writevFully(file: FileHandle, buffers: Buffer[], position: number): Promise<void> {
  const total = buffers.reduce((sum, buffer) => sum + buffer.length, 0);
  const { bytesWritten } = await file.writev(buffers, position);
  if (bytesWritten === total) return;
  let start = 0;
  for (const buffer of buffers) {
    const end = start + buffer.length;
    if (end > bytesWritten) {
      const from = Math.max(0, bytesWritten - start);
      await writeFully(file, buffer.subarray(from), position + start + from);
    }
    start = end;
  }
}
