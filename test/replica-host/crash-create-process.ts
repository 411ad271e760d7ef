/**
 * Starts a ReplicaHost create and stops in the middle of it, after the replica is made and the
 * caller's own file written but before the create commits; prints "made" and waits to be killed
 * (kill -9: a crash at the worst point). Usage: node --import tsx crash-create-process.ts DRIVE VOLUME_ID
 */
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { pino } from "pino";
import { Pool } from "../../agent/pool.js";
import { ReplicaHost } from "../../agent/replica-host.js";

const [drive, volumeId] = process.argv.slice(2);
const host = await ReplicaHost.open(await Pool.open([{ path: drive! }]), pino({ level: "silent" }));
await host.create(volumeId!, "replica-crash", 64 * 1024 * 1024, 1, {
  beforeCommit: async (dir) => {
    await writeFile(join(dir, "volume.json"), "{}");
    process.stdout.write("made\n");
    // Held here until killed: a timer keeps the process alive (a pending promise alone would not).
    setInterval(() => {}, 60_000);
    await new Promise(() => {});
  },
});
