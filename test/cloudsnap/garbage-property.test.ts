import { randomBytes, randomUUID } from "node:crypto";
import { setTimeout as sleep } from "node:timers/promises";
import { describe, expect, it } from "vitest";
import type { CloudsnapRepository } from "../../agent/cloudsnap/repository.js";
import { manifestsPrefix, packsPrefix } from "../../core/cloud/cloudsnap-layout.js";
import { StrataError } from "../../core/errors.js";
import { type HeldLease, underLease } from "../../core/state/leases.js";
import type { StateStore } from "../../core/state/store.js";
import { freshStorePerTest } from "../core/state-harness.js";
import { random } from "../store/helpers.js";
import { bucketPerSuite, keysUnder, MiB, manifestOf, repositoryOn, restored } from "./support.js";

/**
 * Retention's safety, as a property: whatever the order of uploads (full and incremental, whose
 * changed chunks become deltas, cumulative ones, and full again), deletes,
 * garbage collections (repacking at random thresholds) and restores, some of them at once, every
 * cloudsnap the catalog lists restores to exactly what the volume held when it was taken, and
 * once all are deleted nothing of the volume is left. Mutations take the volume's lease from a real
 * state table and wait for it like a workflow's retry would; restores take none.
 */

const SIZE = 8 * MiB;
const BLOCK = 4096;
const storage = bucketPerSuite();
let store: StateStore;
freshStorePerTest((fresh) => {
  store = fresh;
});

/** A volume's model: its bytes now, and what each snapshot it was uploaded from held. */
class ModelVolume {
  readonly id = randomUUID();
  bytes = Buffer.alloc(SIZE);
  readonly snapshots = new Map<string, Buffer>();

  /** The runs where `base` and now differ, block by block: what the layer maps would say. */
  changedSince(base: Buffer): { offset: number; length: number }[] {
    const runs: { offset: number; length: number }[] = [];
    for (let offset = 0; offset < SIZE; offset += BLOCK) {
      if (this.bytes.subarray(offset, offset + BLOCK).equals(base.subarray(offset, offset + BLOCK))) continue;
      const last = runs.at(-1);
      if (last !== undefined && last.offset + last.length === offset) last.length += BLOCK;
      else runs.push({ offset, length: BLOCK });
    }
    return runs;
  }
}

describe("garbage collection and retention", () => {
  it.each([11, 12, 13])(
    "seed %i: never lose a chunk a listed cloudsnap needs, and leave nothing once all are deleted",
    async (seed) => {
      const rng = random(seed);
      const repo: CloudsnapRepository = repositoryOn(storage.bucket, undefined, {
        targetBytes: 2 * MiB,
        concurrency: 2,
      });
      const volume = new ModelVolume();
      const expected = new Map<string, Buffer>();
      const exclusive = <T>(holder: string, work: (held: HeldLease) => Promise<T>) =>
        underLeaseWhenFree(store, `cloudsnaps/${volume.id}`, holder, work);

      const takeOne = (step: number) =>
        exclusive(`take-${step}`, async (held) => {
          const latest = await repo.latest(volume.id);
          // Now and then the previous snapshot is gone (deleted by hand): the upload reads everything.
          const base =
            latest !== undefined && rng.int(4) !== 0 ? volume.snapshots.get(latest.snapshotId) : undefined;
          const frozen = Buffer.from(volume.bytes);
          const snapshotId = randomUUID();
          volume.snapshots.set(snapshotId, frozen);
          const cloudsnap = await repo.take(
            {
              volumeId: volume.id,
              volumeName: "pg-data",
              replicationFactor: 1,
              snapshotId,
              source: {
                sizeBytes: SIZE,
                runs: base === undefined ? [{ offset: 0, length: SIZE }] : volume.changedSince(base),
                read: async (offset, length) => Buffer.from(frozen.subarray(offset, offset + length)),
              },
              ...(base === undefined ? {} : { since: latest!.snapshotId }),
            },
            held,
          );
          expected.set(cloudsnap.id, frozen);
          if (base !== undefined) await countDeltas(latest!.id, cloudsnap.id);
        });
      /** Deltas the incremental made, and those that grew a delta of the previous cloudsnap. */
      const made = { deltas: 0, cumulative: 0 };
      const countDeltas = async (previousId: string, id: string) => {
        const before = (await manifestOf(storage.bucket, previousId)).manifest.chunks;
        for (const [index, entry] of (await manifestOf(storage.bucket, id)).manifest.chunks) {
          const previous = before.get(index);
          if (
            entry.delta === undefined ||
            (previous?.pack === entry.pack && previous.offset === entry.offset)
          )
            continue;
          made.deltas++;
          if (previous?.delta !== undefined) made.cumulative++;
        }
      };
      const deleteOne = (step: number, id: string) =>
        exclusive(`delete-${step}`, async (held) => {
          await repo.delete(id, held);
          expected.delete(id);
        });
      const collect = (step: number) =>
        exclusive(`gc-${step}`, (held) =>
          repo.collectGarbage(volume.id, held, { repackBelow: 0.5 + rng.int(5) / 10 }),
        );
      const check = async (id: string, wanted: Buffer) => {
        expect((await restored(repo, id, SIZE)).target.equals(wanted)).toBe(true);
      };

      for (let step = 0; step < 36; step++) {
        for (let writes = 1 + rng.int(3); writes > 0; writes--) {
          const kind = rng.int(7);
          if (kind >= 4) {
            // A database's pages: a few 4 KiB blocks here and there, which incrementals store as deltas.
            for (let pages = 1 + rng.int(6); pages > 0; pages--) {
              randomBytes(BLOCK * (1 + rng.int(2))).copy(volume.bytes, rng.int(SIZE / BLOCK - 1) * BLOCK);
            }
            continue;
          }
          const at = rng.int(SIZE / MiB) * MiB + rng.int(4) * 64 * 1024;
          const data =
            kind === 0
              ? Buffer.alloc(MiB / 2) // zeros over whatever was there
              : kind === 1
                ? Buffer.from(volume.bytes.subarray(0, MiB / 2)) // a copy of other data: dedupe
                : randomBytes(64 * 1024 * (1 + rng.int(8)));
          data.copy(volume.bytes, at);
        }
        const listed = [...expected.keys()];
        // Retention deletes the oldest mostly; an operator, any.
        const doomed =
          listed.length >= 2 && rng.int(4) !== 0
            ? listed[rng.int(2) === 0 ? 0 : rng.int(listed.length)]
            : undefined;
        const survivor = listed.find((id) => id !== doomed);
        const actions: Promise<unknown>[] = [takeOne(step)];
        if (doomed !== undefined) actions.push(deleteOne(step, doomed));
        if (rng.int(3) !== 0) actions.push(collect(step));
        if (survivor !== undefined) actions.push(check(survivor, expected.get(survivor)!));
        await Promise.all(actions);
        expect(new Set((await repo.list(volume.id)).map((c) => c.id))).toEqual(new Set(expected.keys()));
      }

      expect(made.deltas).toBeGreaterThan(0);
      expect(made.cumulative).toBeGreaterThan(0);
      for (const [id, wanted] of expected) await check(id, wanted);
      for (const id of expected.keys()) await deleteOne(-1, id);
      await exclusive("final-gc", (held) => repo.collectGarbage(volume.id, held));
      expect(await keysUnder(storage.bucket, packsPrefix(volume.id))).toEqual([]);
      expect(await keysUnder(storage.bucket, manifestsPrefix(volume.id))).toEqual([]);
    },
    240_000,
  );
});

/** Runs `work` under the lease, waiting while another holds it (as a workflow's Retry would). */
async function underLeaseWhenFree<T>(
  store: StateStore,
  name: string,
  holder: string,
  work: (held: HeldLease) => Promise<T>,
): Promise<T> {
  for (;;) {
    try {
      return await underLease(store.leases, { name, holder, ttlMs: 60_000 }, work);
    } catch (error) {
      const busy = error instanceof StrataError && error.message.startsWith(`${name} is in use by`);
      if (!busy) throw error;
      await sleep(20);
    }
  }
}
