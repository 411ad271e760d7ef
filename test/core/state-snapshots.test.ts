import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { RecordExistsError, RecordNotFoundError } from "../../core/state/errors.js";
import type { LocalDynamoDb } from "../../core/state/local-dynamodb.js";
import type { StateStore } from "../../core/state/store.js";
import { GiB } from "./fixtures.js";
import { freshStore, startDynamoDb } from "./state-harness.js";

let dynamoDb: LocalDynamoDb;
let store: StateStore;

beforeAll(async () => {
  dynamoDb = await startDynamoDb();
  store = await freshStore(() => new Date("2030-01-01T00:00:00.000Z"));
});

afterAll(async () => {
  store.close();
  await dynamoDb.close();
});

describe("snapshot records", () => {
  it("records snapshots per volume and lists only that volume's", async () => {
    const daily = await store.snapshots.create({ volumeId: "vol-1", name: "daily", sizeBytes: GiB });
    const weekly = await store.snapshots.create({ volumeId: "vol-1", name: "weekly", sizeBytes: GiB });
    const other = await store.snapshots.create({ volumeId: "vol-2", name: "daily", sizeBytes: 2 * GiB });

    expect(daily).toMatchObject({
      volumeId: "vol-1",
      name: "daily",
      sizeBytes: GiB,
      createdAt: "2030-01-01T00:00:00.000Z",
    });
    expect(await store.snapshots.get("vol-1", "daily")).toEqual(daily);
    expect(await store.snapshots.list("vol-1")).toEqual([daily, weekly]);
    expect(await store.snapshots.list("vol-2")).toEqual([other]);
    expect(await store.snapshots.list("vol-3")).toEqual([]);
  });

  it("takes a snapshot name once per volume", async () => {
    await store.snapshots.create({ volumeId: "vol-4", name: "once", sizeBytes: GiB });
    await expect(store.snapshots.create({ volumeId: "vol-4", name: "once", sizeBytes: GiB })).rejects.toThrow(
      RecordExistsError,
    );
    expect(await store.snapshots.list("vol-4")).toHaveLength(1);
  });

  it("deletes a snapshot, and says when there is none to delete", async () => {
    await store.snapshots.create({ volumeId: "vol-5", name: "gone", sizeBytes: GiB });
    await store.snapshots.delete("vol-5", "gone");
    await expect(store.snapshots.get("vol-5", "gone")).rejects.toThrow(RecordNotFoundError);
    await expect(store.snapshots.delete("vol-5", "gone")).rejects.toThrow(
      'snapshot "gone" of volume vol-5 not found',
    );
  });
});
