import { randomUUID } from "node:crypto";
import { expect, it } from "vitest";
import type { VolumeCoordinator } from "../../agent/replication/coordinator/coordinator.js";
import { snapshotTogether } from "../../agent/replication/coordinator/group-snapshot.js";
import { MiB } from "../store/helpers.js";
import { useCoordinatorSuite } from "./harness.js";

const SIZE = 4 * MiB;
const BLOCK = 4096;
/** Concurrent transactions, each with its own block on both volumes. */
const LANES = 8;
const suite = useCoordinatorSuite();

/**
 * A database's pattern: in each lane, record n goes to the data volume, then, once acknowledged,
 * to the log volume, then record n + 1. At any single point of both write streams, each lane's
 * log holds the data's record or the one before it.
 */
function recordWriter(data: VolumeCoordinator, log: VolumeCoordinator) {
  let running = true;
  let written = 0;
  const block = (n: number) => {
    const buffer = Buffer.alloc(BLOCK);
    buffer.writeUInt32BE(n);
    return buffer;
  };
  const lane = async (index: number) => {
    for (let n = 1; running; n++) {
      await data.write(index * BLOCK, block(n), { fua: false });
      await log.write(index * BLOCK, block(n), { fua: false });
      written++;
    }
  };
  const done = Promise.all(Array.from({ length: LANES }, (_, index) => lane(index)));
  return {
    get written() {
      return written;
    },
    stop: async () => {
      running = false;
      await done;
    },
  };
}

/** Each lane's record number in a snapshot of a volume. */
async function recordsIn(coordinator: VolumeCoordinator, snapshotId: string): Promise<number[]> {
  const bytes = await (await coordinator.snapshotReader(snapshotId)).read(0, LANES * BLOCK);
  return Array.from({ length: LANES }, (_, index) => bytes.readUInt32BE(index * BLOCK));
}

it("snapshots two volumes at one point of their write streams while writers go on", async () => {
  const dataVolume = await suite.createVolume(SIZE, ["in-process", "in-process"]);
  const logVolume = await suite.createVolume(SIZE, ["in-process", "in-process"]);
  const data = await suite.attach(dataVolume, "node-a");
  const log = await suite.attach(logVolume, "node-a");
  const writer = recordWriter(data, log);
  try {
    for (let round = 0; round < 15; round++) {
      const target = writer.written + 50;
      while (writer.written < target) await new Promise((resolve) => setImmediate(resolve));
      const [dataSnapshot, logSnapshot] = [randomUUID(), randomUUID()];
      await snapshotTogether([
        { coordinator: log, request: { id: logSnapshot, name: `log-${round}` } },
        { coordinator: data, request: { id: dataSnapshot, name: `data-${round}` } },
      ]);
      const inData = await recordsIn(data, dataSnapshot);
      const inLog = await recordsIn(log, logSnapshot);
      for (let lane = 0; lane < LANES; lane++) {
        // The log never holds a record the data lacks, and lags it by the record in flight at most.
        expect(inData[lane]! - inLog[lane]!, `lane ${lane}, round ${round}`).toBeGreaterThanOrEqual(0);
        expect(inData[lane]! - inLog[lane]!, `lane ${lane}, round ${round}`).toBeLessThanOrEqual(1);
      }
    }
  } finally {
    await writer.stop();
  }
});
