/**
 * Child process for the kill -9 test (not a test file): fills a replica with a stamped pattern,
 * flushes, takes a snapshot, then does FUA writes round-robin forever, printing "acked <n>" after
 * each one, until the test kills it.
 */
import { Replica } from "../../agent/store/replica.js";
import { TestAllocator } from "./helpers.js";

export const CRASH_VOLUME_BLOCKS = 256;
const BLOCK = 4096;

/** Block contents for write number `n`: its number, then a fill byte derived from it. */
export function stampedBlock(n: number): Buffer {
  const block = Buffer.alloc(BLOCK, n % 251);
  block.writeUInt32LE(n, 0);
  return block;
}

export function blockOfWrite(n: number): number {
  return (n * 7) % CRASH_VOLUME_BLOCKS;
}

async function main(dir: string): Promise<void> {
  const replica = await Replica.create(dir, {
    volumeId: "crash",
    replicaId: "crash",
    sizeBytes: CRASH_VOLUME_BLOCKS * BLOCK,
    epoch: 1,
    allocator: new TestAllocator(),
  });
  const initial = Buffer.concat(Array.from({ length: CRASH_VOLUME_BLOCKS }, () => stampedBlock(0)));
  await replica.write(0, initial, { fua: false });
  await replica.flush();
  await replica.snapshot("base");
  process.stdout.write("flushed\n");
  for (let n = 1; ; n++) {
    await replica.write(blockOfWrite(n) * BLOCK, stampedBlock(n), { fua: true });
    process.stdout.write(`acked ${n}\n`);
  }
}

if (process.argv[2] !== undefined) await main(process.argv[2]);
