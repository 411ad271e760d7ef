import { DynamoDBClient } from "@aws-sdk/client-dynamodb";
import { DynamoDBDocumentClient, PutCommand } from "@aws-sdk/lib-dynamodb";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Replica } from "../../core/model.js";
import { EpochConflictError, RecordExistsError, RecordNotFoundError } from "../../core/state/errors.js";
import { volumeNameKey } from "../../core/state/keys.js";
import type { LocalDynamoDb } from "../../core/state/local-dynamodb.js";
import type { StateStore } from "../../core/state/store.js";
import type { NewVolume } from "../../core/state/volumes.js";
import { GiB } from "./fixtures.js";
import { freshStore, startDynamoDb } from "./state-harness.js";

let dynamoDb: LocalDynamoDb;
let store: StateStore;
let now = new Date("2030-01-01T00:00:00.000Z");

beforeAll(async () => {
  dynamoDb = await startDynamoDb();
  store = await freshStore(() => now);
});

afterAll(async () => {
  store.close();
  await dynamoDb.close();
});

const replica = (node: string, state: Replica["state"] = "in-sync"): Replica => ({
  replicaId: `r-${node}`,
  node,
  state,
});

const newVolume = (name: string, overrides: Partial<NewVolume> = {}): NewVolume => ({
  name,
  sizeBytes: 10 * GiB,
  replicationFactor: 2,
  replicas: [replica("node-1"), replica("node-2")],
  ...overrides,
});

describe("creating volumes", () => {
  it("creates a volume at epoch 1 and finds it by id, by name and in the list", async () => {
    const created = await store.volumes.create(
      newVolume("alpha", { labels: { app: "db" }, nodeSelector: { rack: "r1" } }),
    );
    expect(created).toMatchObject({
      name: "alpha",
      epoch: 1,
      attachedNode: null,
      labels: { app: "db" },
      nodeSelector: { rack: "r1" },
      replicas: [replica("node-1"), replica("node-2")],
    });
    expect(await store.volumes.get(created.id)).toEqual(created);
    expect(await store.volumes.getByName("alpha")).toEqual(created);
    expect(await store.volumes.list()).toContainEqual(created);
  });

  it("lets exactly one of several concurrent creates of one name win", async () => {
    const attempts = await Promise.allSettled(
      Array.from({ length: 6 }, () => store.volumes.create(newVolume("race"))),
    );
    const winners = attempts.filter((attempt) => attempt.status === "fulfilled");
    const losers = attempts.flatMap((attempt) => (attempt.status === "rejected" ? [attempt.reason] : []));
    expect(winners).toHaveLength(1);
    expect(losers).toHaveLength(5);
    for (const loser of losers) expect(loser).toBeInstanceOf(RecordExistsError);
    expect(losers[0]).toHaveProperty("message", 'volume "race" already exists');
    expect((await store.volumes.list()).filter((volume) => volume.name === "race")).toHaveLength(1);
  });

  it("gives the name back when the volume record cannot be written", async () => {
    // 20,000 replicas make an item far over DynamoDB's 400 KB limit: the volume put fails for real.
    const replicas = Array.from({ length: 20_000 }, (_, index) => replica(`node-${index}`));
    await expect(store.volumes.create(newVolume("too-big", { replicas }))).rejects.toThrow(/size/i);
    await expect(store.volumes.getByName("too-big")).rejects.toThrow(RecordNotFoundError);
    expect((await store.volumes.create(newVolume("too-big"))).name).toBe("too-big");
  });

  it("takes over a name reserved by a create that crashed, once the reservation is old enough", async () => {
    // What a process that died between reserving the name and writing the volume leaves behind.
    const raw = DynamoDBDocumentClient.from(new DynamoDBClient({}));
    const orphan = { name: "orphaned", volumeId: "never-written", createdAt: now.toISOString() };
    await raw.send(
      new PutCommand({ TableName: store.tableName, Item: { ...volumeNameKey("orphaned"), ...orphan } }),
    );
    raw.destroy();

    now = new Date("2030-01-01T00:01:00.000Z");
    await expect(store.volumes.create(newVolume("orphaned"))).rejects.toThrow(RecordExistsError);

    now = new Date("2030-01-01T00:06:00.000Z");
    const created = await store.volumes.create(newVolume("orphaned"));
    expect(await store.volumes.getByName("orphaned")).toEqual(created);

    // An old reservation whose volume exists is never taken over.
    now = new Date("2030-01-01T01:00:00.000Z");
    await expect(store.volumes.create(newVolume("orphaned"))).rejects.toThrow(RecordExistsError);
  });

  it("refuses replicas that share a node (invariant 1) and writes nothing", async () => {
    const twice = newVolume("twice", {
      replicas: [replica("node-1"), { ...replica("node-1"), replicaId: "other" }],
    });
    await expect(store.volumes.create(twice)).rejects.toMatchObject({
      code: "INVALID_ARGUMENT",
      message: expect.stringContaining("replicas must be on distinct nodes"),
    });
    await expect(store.volumes.getByName("twice")).rejects.toThrow(RecordNotFoundError);
  });
});

describe("compare-and-swap on the epoch", () => {
  it("applies a change at the expected epoch and bumps the epoch", async () => {
    const volume = await store.volumes.create(newVolume("cas"));
    const attached = await store.volumes.updateIfEpoch(volume.id, 1, { attachedNode: "node-1" });
    expect(attached).toMatchObject({ epoch: 2, attachedNode: "node-1", replicas: volume.replicas });

    const degraded = await store.volumes.updateIfEpoch(volume.id, 2, {
      replicas: [replica("node-1"), replica("node-2", "failed")],
    });
    expect(degraded).toMatchObject({ epoch: 3, attachedNode: "node-1" });
    expect(await store.volumes.get(volume.id)).toEqual(degraded);
  });

  it("refuses a change from a stale epoch with the current epoch, and keeps the record", async () => {
    const volume = await store.volumes.create(newVolume("stale"));
    const current = await store.volumes.updateIfEpoch(volume.id, 1, { attachedNode: "node-1" });

    const stale = store.volumes.updateIfEpoch(volume.id, 1, { attachedNode: "node-2" });
    await expect(stale).rejects.toThrow(EpochConflictError);
    await expect(stale).rejects.toMatchObject({ volumeId: volume.id, expectedEpoch: 1, currentEpoch: 2 });
    expect(await store.volumes.get(volume.id)).toEqual(current);
  });

  it("lets exactly one of several writers that read the same epoch win", async () => {
    const volume = await store.volumes.create(newVolume("contended"));
    const writers = ["node-1", "node-2", "node-3", "node-4", "node-5"];
    const attempts = await Promise.allSettled(
      writers.map((node) => store.volumes.updateIfEpoch(volume.id, 1, { attachedNode: node })),
    );

    const winners = attempts.flatMap((attempt) => (attempt.status === "fulfilled" ? [attempt.value] : []));
    const losers = attempts.flatMap((attempt) => (attempt.status === "rejected" ? [attempt.reason] : []));
    expect(winners).toHaveLength(1);
    expect(losers).toHaveLength(writers.length - 1);
    for (const loser of losers) expect(loser).toMatchObject({ name: "EpochConflictError", currentEpoch: 2 });
    expect(await store.volumes.get(volume.id)).toEqual(winners[0]);
  });

  it("records a fence as an epoch bump with nothing else changed, and a resize with it", async () => {
    const volume = await store.volumes.create(newVolume("fenced"));
    const fenced = await store.volumes.updateIfEpoch(volume.id, 1, {});
    expect(fenced).toEqual({ ...volume, epoch: 2 });

    const resized = await store.volumes.updateIfEpoch(volume.id, 2, { sizeBytes: 20 * GiB });
    expect(resized).toEqual({ ...volume, epoch: 3, sizeBytes: 20 * GiB });
  });

  it("reports a missing volume as not found, not as a conflict", async () => {
    await expect(store.volumes.updateIfEpoch("no-such-volume", 1, { attachedNode: null })).rejects.toThrow(
      RecordNotFoundError,
    );
  });

  it("refuses a change that would put two replicas on one node, leaving the epoch alone", async () => {
    const volume = await store.volumes.create(newVolume("guarded"));
    const clash = [replica("node-1"), { ...replica("node-1"), replicaId: "again" }];
    await expect(store.volumes.updateIfEpoch(volume.id, 1, { replicas: clash })).rejects.toMatchObject({
      code: "INVALID_ARGUMENT",
    });
    expect((await store.volumes.get(volume.id)).epoch).toBe(1);
  });
});

describe("deleting volumes", () => {
  it("deletes only at the expected epoch, then frees the name", async () => {
    const volume = await store.volumes.create(newVolume("doomed"));
    await store.volumes.updateIfEpoch(volume.id, 1, { attachedNode: "node-1" });

    await expect(store.volumes.delete(volume.id, 1)).rejects.toMatchObject({ currentEpoch: 2 });
    expect((await store.volumes.get(volume.id)).epoch).toBe(2);

    await store.volumes.delete(volume.id, 2);
    await expect(store.volumes.get(volume.id)).rejects.toThrow(RecordNotFoundError);
    await expect(store.volumes.getByName("doomed")).rejects.toThrow('volume "doomed" not found');
    await expect(store.volumes.delete(volume.id, 2)).rejects.toThrow(RecordNotFoundError);
    expect((await store.volumes.create(newVolume("doomed"))).id).not.toBe(volume.id);
  });
});
