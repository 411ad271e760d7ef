import { describe, expect, it } from "vitest";
import type { Cloudsnap } from "../../core/cloudsnaps.js";
import type { ScheduleKind, Schedules } from "../../core/schedule-policies.js";
import type { StateStore } from "../../core/state/store.js";
import { applyRetention } from "../../functions/apply-retention/apply.js";
import { expiredCloudsnaps } from "../../functions/apply-retention/retention.js";
import { checkRestore } from "../../functions/check-restore/check.js";
import { findDueCloudsnaps } from "../../functions/find-due-cloudsnaps/find.js";
import { dueSchedule, latestSlot } from "../../functions/find-due-cloudsnaps/schedule.js";
import { freshStorePerTest } from "../core/state-harness.js";
import {
  catalogEntry,
  clusterOver,
  liveNode,
  NOW,
  registerAll,
  replica,
  staleNode,
  volumeWith,
} from "./support.js";

const at = (iso: string) => new Date(iso);
const all: Schedules = {
  interval: { minutes: 15, retain: 4 },
  daily: { time: "02:30", retain: 7 },
  weekly: { day: "monday", time: "03:00", retain: 4 },
  monthly: { date: 28, time: "04:00", retain: 12 },
};

describe("a schedule's latest slot", () => {
  // 2026-12-03 is a Thursday.
  it.each([
    ["interval", "2026-12-03T10:44:59.999Z", "2026-12-03T10:30:00.000Z"],
    ["interval", "2026-12-03T10:45:00.000Z", "2026-12-03T10:45:00.000Z"],
    ["daily", "2026-12-03T02:29:59.000Z", "2026-12-02T02:30:00.000Z"],
    ["daily", "2026-12-03T02:30:00.000Z", "2026-12-03T02:30:00.000Z"],
    ["daily", "2027-01-01T00:00:00.000Z", "2026-12-31T02:30:00.000Z"],
    ["weekly", "2026-12-03T12:00:00.000Z", "2026-11-30T03:00:00.000Z"],
    ["weekly", "2026-11-30T02:59:00.000Z", "2026-11-23T03:00:00.000Z"],
    ["weekly", "2026-11-30T03:00:00.000Z", "2026-11-30T03:00:00.000Z"],
    ["monthly", "2026-12-28T03:59:00.000Z", "2026-11-28T04:00:00.000Z"],
    ["monthly", "2026-12-28T04:00:00.000Z", "2026-12-28T04:00:00.000Z"],
    ["monthly", "2027-01-10T00:00:00.000Z", "2026-12-28T04:00:00.000Z"],
  ] as const)("%s at %s began %s", (kind, now, slot) => {
    expect(latestSlot(all, kind as ScheduleKind, at(now))?.toISOString()).toBe(slot);
  });

  it("is undefined for a schedule the policy does not have", () => {
    expect(latestSlot({ daily: { time: "01:00", retain: 1 } }, "weekly", NOW)).toBeUndefined();
  });
});

const made = (schedule: ScheduleKind | undefined, createdAt: string) => ({
  createdAt,
  ...(schedule === undefined ? {} : { schedule }),
});

describe("which schedule is due", () => {
  const hourly: Schedules = { interval: { minutes: 60, retain: 3 }, daily: { time: "02:00", retain: 2 } };

  it("is the coarsest one without a cloudsnap since its slot began; a manual cloudsnap counts for none", () => {
    const now = at("2026-12-03T10:20:00.000Z");
    expect(dueSchedule(hourly, [], now)).toEqual({ schedule: "daily", slot: at("2026-12-03T02:00:00.000Z") });
    const daily = [made("daily", "2026-12-03T02:00:04.000Z")];
    expect(dueSchedule(hourly, daily, now)).toEqual({
      schedule: "interval",
      slot: at("2026-12-03T10:00:00.000Z"),
    });
    const manual = [...daily, made(undefined, "2026-12-03T10:10:00.000Z")];
    expect(dueSchedule(hourly, manual, now)?.schedule).toBe("interval");
    expect(
      dueSchedule(hourly, [...daily, made("interval", "2026-12-03T10:00:03.000Z")], now),
    ).toBeUndefined();
    // The next slot makes it due again.
    expect(
      dueSchedule(
        hourly,
        [...daily, made("interval", "2026-12-03T10:00:03.000Z")],
        at("2026-12-03T11:00:00.000Z"),
      ),
    ).toEqual({ schedule: "interval", slot: at("2026-12-03T11:00:00.000Z") });
  });
});

const snap = (id: string, schedule?: ScheduleKind) => ({
  id,
  ...(schedule === undefined ? {} : { schedule }),
});

describe("retention", () => {
  it("keeps the last `retain` of each schedule, oldest deleted first, and never a manual one", () => {
    const catalog = [
      snap("m1"),
      snap("i1", "interval"),
      snap("d1", "daily"),
      snap("i2", "interval"),
      snap("m2"),
      snap("i3", "interval"),
      snap("d2", "daily"),
      snap("i4", "interval"),
      snap("w1", "weekly"),
      snap("d3", "daily"),
    ];
    const policy: Schedules = { interval: { minutes: 5, retain: 2 }, daily: { time: "01:00", retain: 1 } };
    expect(expiredCloudsnaps(policy, catalog)).toEqual(["d1", "d2", "i1", "i2"]);
    // A schedule the policy no longer has keeps what it made; nothing is deleted below `retain`.
    expect(expiredCloudsnaps({ interval: { minutes: 5, retain: 10 } }, catalog)).toEqual([]);
  });
});

describe("the cloudsnap workflow's tasks on a store", () => {
  let store: StateStore;
  freshStorePerTest(
    (fresh) => {
      store = fresh;
    },
    () => NOW,
  );
  const catalogs = new Map<string, Cloudsnap[]>();
  const readCatalogs = async (volumeId: string) => catalogs.get(volumeId) ?? [];
  /** `stamp` as cloudsnap ids write it, e.g. 20300101T000100000Z. */
  const entry = (volumeId: string, stamp: string, schedule?: ScheduleKind) =>
    catalogEntry(
      volumeId,
      new Date(stamp.replace(/^(\d{4})(\d\d)(\d\d)T(\d\d)(\d\d)(\d\d)(\d{3})Z$/, "$1-$2-$3T$4:$5:$6.$7Z")),
      schedule,
    );

  it("finds each due volume once, on its attached node or a live replica holder, with a token per slot", async () => {
    await registerAll(store, [liveNode("node-1", "a"), liveNode("node-2", "b"), staleNode("node-3", "c")]);
    const attached = await volumeWith(store, "orders", [replica("node-1"), replica("node-2")], "node-2");
    const detached = await volumeWith(store, "ledger", [replica("node-3"), replica("node-1")]);
    const unassigned = await volumeWith(store, "scratch", [replica("node-1")]);
    const recent = await volumeWith(store, "recent", [replica("node-1")]);
    await store.policies.create({
      name: "quarter-hour",
      schedules: { interval: { minutes: 15, retain: 2 } },
    });
    await store.policies.assign({ volumeId: attached.id, volumeName: "orders", policy: "quarter-hour" });
    await store.policies.assign({
      volumeId: detached.id,
      volumeName: "ledger",
      policy: "quarter-hour",
      group: "books",
    });
    await store.policies.assign({ volumeId: recent.id, volumeName: "recent", policy: "quarter-hour" });
    catalogs.set(recent.id, [entry(recent.id, "20300101T000000000Z", "interval")]);
    catalogs.set(unassigned.id, []);

    const input = { at: "2030-01-01T00:07:00.000Z" };
    const found = await findDueCloudsnaps(input, clusterOver(store), readCatalogs);
    expect(found.skipped).toEqual([]);
    const started = found.due.map(({ volume, operation }) => [volume, operation.node, operation.params]);
    expect(started.sort()).toEqual([
      ["ledger", "node-1", { schedule: "interval", group: "books" }],
      ["orders", "node-2", { schedule: "interval" }],
    ]);
    const orders = found.due.find((due) => due.volume === "orders")!;
    expect(orders.operation.requestToken).toBe(
      `cloudsnap:${attached.id}:interval:2030-01-01T00:00:00.000Z:1`,
    );
    expect(orders.secondAttempt.requestToken).not.toBe(orders.operation.requestToken);
    // A retried task in the same slot finds the same.
    expect(await findDueCloudsnaps(input, clusterOver(store), readCatalogs)).toEqual(found);
  });

  it("skips a volume whose upload still runs, and one no live node can upload", async () => {
    // Every node silent: nothing can upload "stranded"; "busy" is skipped before its node is chosen.
    await registerAll(store, [staleNode("node-1", "a"), staleNode("node-3", "c")]);
    const busy = await volumeWith(store, "busy", [replica("node-1")]);
    const stranded = await volumeWith(store, "stranded", [replica("node-3")]);
    await store.policies.create({ name: "daily", schedules: { daily: { time: "01:00", retain: 2 } } });
    for (const volume of [busy, stranded]) {
      await store.policies.assign({ volumeId: volume.id, volumeName: volume.name, policy: "daily" });
    }
    await store.operations.start({
      requestToken: "by-hand",
      kind: "cloudsnap",
      volumeId: busy.id,
      volumeName: "busy",
      node: "node-1",
      params: {},
    });
    const found = await findDueCloudsnaps({ at: NOW.toISOString() }, clusterOver(store), readCatalogs);
    expect(found.due).toEqual([]);
    expect(found.skipped.sort((a, b) => a.volume.localeCompare(b.volume))).toEqual([
      { volume: "busy", reason: "a cloudsnap or retention of it is still running" },
      { volume: "stranded", reason: "no node is live to upload it" },
    ]);
  });

  it("starts the deletion of what the policy no longer keeps, once per new cloudsnap, and nothing when all are kept", async () => {
    await registerAll(store, [liveNode("node-1", "a")]);
    const volume = await volumeWith(store, "orders", [replica("node-1")]);
    await store.policies.create({ name: "keep-2", schedules: { interval: { minutes: 1, retain: 2 } } });
    const stamps = ["20300101T000100000Z", "20300101T000200000Z", "20300101T000300000Z"];
    catalogs.set(volume.id, [
      entry(volume.id, "20300101T000000000Z"),
      ...stamps.map((stamp) => entry(volume.id, stamp, "interval")),
    ]);
    const input = {
      volume: "orders",
      volumeId: volume.id,
      node: "node-1",
      policy: "keep-2",
      cloudsnap: `${volume.id}-${stamps[2]}`,
    };

    const started = await applyRetention(input, clusterOver(store), readCatalogs);
    expect(started).toEqual({ expired: [`${volume.id}-${stamps[0]}`], operationId: expect.any(String) });
    expect(await applyRetention(input, clusterOver(store), readCatalogs)).toEqual(started);
    const operation = await store.operations.get(started.operationId!);
    expect(operation).toMatchObject({
      kind: "cloudsnap-retention",
      node: "node-1",
      params: { cloudsnaps: started.expired },
    });

    catalogs.set(volume.id, catalogs.get(volume.id)!.slice(2));
    expect(await applyRetention({ ...input, cloudsnap: "next" }, clusterOver(store), readCatalogs)).toEqual({
      expired: [],
      operationId: null,
    });
  });

  it("refuses a restore that cannot succeed, naming why, and names the operation of one that can", async () => {
    await registerAll(store, [liveNode("node-1", "a")]);
    await volumeWith(store, "taken", [replica("node-1")]);
    const source = "0b8e7c39-4a3a-4bd4-9a62-3f8c9a3c2b10";
    catalogs.set(source, [entry(source, "20300101T000000000Z")]);
    const check = (request: { cloudsnap: string; volume: string }) =>
      checkRestore({ execution: "restore-1", request }, clusterOver(store), readCatalogs);

    await expect(check({ cloudsnap: "nope", volume: "new" })).rejects.toThrow('"nope" is not a cloudsnap id');
    await expect(check({ cloudsnap: `${source}-20300101T000100000Z`, volume: "new" })).rejects.toThrow(
      "is not in the bucket's catalog",
    );
    await expect(check({ cloudsnap: `${source}-20300101T000000000Z`, volume: "taken" })).rejects.toThrow(
      'volume "taken" already exists: restore into a new name',
    );
    expect(await check({ cloudsnap: `${source}-20300101T000000000Z`, volume: "new" })).toEqual({
      operation: {
        kind: "restore",
        volume: "new",
        node: "node-1",
        requestToken: "restore:restore-1",
        params: { cloudsnap: `${source}-20300101T000000000Z` },
      },
    });
  });
});
