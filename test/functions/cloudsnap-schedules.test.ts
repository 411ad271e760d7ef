import { describe, expect, it } from "vitest";
import type { Cloudsnap } from "../../core/cloudsnaps.js";
import { StartOperationRequest } from "../../core/operations.js";
import {
  type ScheduleKind,
  type Schedules,
  scheduledSnapshotName,
  scheduleOfSnapshot,
} from "../../core/schedule-policies.js";
import type { VolumeRecord } from "../../core/state/records.js";
import type { StateStore } from "../../core/state/store.js";
import { applyRetention } from "../../functions/apply-retention/apply.js";
import { expiredCopies } from "../../functions/apply-retention/retention.js";
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
  cron: { expression: "30 */6 * * 1-5", retain: 8 },
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
    // Weekdays at 00:30, 06:30, 12:30 and 18:30 UTC: a fire time is its own slot, the minute before is not.
    ["cron", "2026-12-03T06:30:00.000Z", "2026-12-03T06:30:00.000Z"],
    ["cron", "2026-12-03T06:29:59.999Z", "2026-12-03T00:30:00.000Z"],
    // Saturday noon: Friday's last slot; Monday 00:29: still Friday's.
    ["cron", "2026-12-05T12:00:00.000Z", "2026-12-04T18:30:00.000Z"],
    ["cron", "2026-12-07T00:29:00.000Z", "2026-12-04T18:30:00.000Z"],
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
const minutesAfterMidnight = (minutes: number) => new Date(Date.UTC(2026, 11, 3, 0, minutes)).toISOString();

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
    const made = catalog.map((copy, index) => ({ ...copy, createdAt: minutesAfterMidnight(index) }));
    expect(expiredCopies(policy, made, NOW)).toEqual(["d1", "d2", "i1", "i2"]);
    // A schedule the policy no longer has keeps what it made; nothing is deleted below `retain`.
    expect(expiredCopies({ interval: { minutes: 5, retain: 10 } }, made, NOW)).toEqual([]);
  });
});

describe("cron schedules", () => {
  const sixHourly: Schedules = { cron: { expression: "0 */6 * * *", retain: 4 } };

  it("are due once per fire time; slots missed while down give one copy, for the latest slot", () => {
    const before = [made("cron", "2026-12-01T06:00:02.000Z")];
    // Down from Dec 1 07:00 until Dec 3 10:20: eight slots passed, one copy is due, for 06:00.
    const now = at("2026-12-03T10:20:00.000Z");
    expect(dueSchedule(sixHourly, before, now)).toEqual({
      schedule: "cron",
      slot: at("2026-12-03T06:00:00.000Z"),
    });
    const caughtUp = [...before, made("cron", "2026-12-03T10:20:03.000Z")];
    expect(dueSchedule(sixHourly, caughtUp, now)).toBeUndefined();
    expect(dueSchedule(sixHourly, caughtUp, at("2026-12-03T11:59:59.999Z"))).toBeUndefined();
    expect(dueSchedule(sixHourly, caughtUp, at("2026-12-03T12:00:00.000Z"))).toEqual({
      schedule: "cron",
      slot: at("2026-12-03T12:00:00.000Z"),
    });
  });

  it("rank below daily and above the interval when both are due", () => {
    const both: Schedules = {
      ...sixHourly,
      interval: { minutes: 15, retain: 4 },
      daily: { time: "01:00", retain: 2 },
    };
    const now = at("2026-12-03T06:05:00.000Z");
    const daily = [made("daily", "2026-12-03T01:00:01.000Z")];
    expect(dueSchedule(both, daily, now)?.schedule).toBe("cron");
    expect(dueSchedule(both, [...daily, made("cron", "2026-12-03T06:00:01.000Z")], now)?.schedule).toBe(
      "interval",
    );
  });
});

describe("retention by age", () => {
  const copy = (id: string, createdAt: string, schedule: ScheduleKind = "interval") => ({
    id,
    createdAt,
    schedule,
  });
  const now = at("2026-12-10T12:00:00.000Z");

  it("deletes copies older than maxAge, keeps one exactly maxAge old, and never the newest", () => {
    const week: Schedules = { interval: { minutes: 60, maxAge: "7d" } };
    const copies = [
      copy("older", "2026-12-03T11:59:59.999Z"),
      copy("exactly", "2026-12-03T12:00:00.000Z"),
      copy("recent", "2026-12-09T12:00:00.000Z"),
    ];
    expect(expiredCopies(week, copies, now)).toEqual(["older"]);
    // A schedule that failed for weeks: every copy is old, the newest still stays.
    const stale = [copy("a", "2026-11-01T00:00:00.000Z"), copy("b", "2026-11-02T00:00:00.000Z")];
    expect(expiredCopies(week, stale, now)).toEqual(["a"]);
    expect(
      expiredCopies({ interval: { minutes: 60, retain: 1, maxAge: "1m" } }, stale.slice(1), now),
    ).toEqual([]);
  });

  it("with retain too, deletes what is beyond the count or too old, per schedule", () => {
    const policy: Schedules = {
      interval: { minutes: 60, retain: 3, maxAge: "12h" },
      cron: { expression: "0 0 * * *", retain: 1 },
    };
    const copies = [
      copy("i1", "2026-12-09T20:00:00.000Z"),
      copy("c1", "2026-12-09T00:00:00.000Z", "cron"),
      copy("i2", "2026-12-09T23:59:59.000Z"),
      copy("i3", "2026-12-10T01:00:00.000Z"),
      copy("c2", "2026-12-10T00:00:00.000Z", "cron"),
      copy("i4", "2026-12-10T11:00:00.000Z"),
    ];
    // i1 is beyond the last 3; i2 is within them but over 12 hours old; i3 is 11 hours old.
    expect(expiredCopies(policy, copies, now)).toEqual(["c1", "i1", "i2"]);
  });
});

describe("scheduled snapshot names", () => {
  it("are <schedule>-<UTC minute of the slot>, and only such names count as a schedule's", () => {
    const name = scheduledSnapshotName("daily", at("2026-12-03T02:00:00.000Z"));
    expect(name).toBe("daily-20261203T0200Z");
    expect(scheduleOfSnapshot(name)).toBe("daily");
    expect(scheduleOfSnapshot("cron-20261203T0600Z")).toBe("cron");
    for (const manual of [
      "daily",
      "daily-before-upgrade",
      "cloudsnap-20261203T020000000Z",
      "hourly-20261203T0200Z",
    ])
      expect(scheduleOfSnapshot(manual)).toBeUndefined();
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
      { volume: "stranded", reason: "no node is live to take it" },
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
      at: "2030-01-01T00:03:30.000Z",
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

  /** Gives every volume the policy, in one group. */
  const followInGroup = async (volumes: readonly VolumeRecord[], policy: string, group: string) => {
    for (const volume of volumes) {
      await store.policies.assign({ volumeId: volume.id, volumeName: volume.name, policy, group });
    }
  };

  it("uploads a group's volumes in one cloudsnap operation (one point of their write streams), and expires theirs in one retention", async () => {
    await registerAll(store, [liveNode("node-1", "a"), liveNode("node-2", "b")]);
    const data = await volumeWith(store, "pg-data", [replica("node-1"), replica("node-2")], "node-1");
    const wal = await volumeWith(store, "pg-wal", [replica("node-1"), replica("node-2")], "node-1");
    await store.policies.create({ name: "keep-1", schedules: { interval: { minutes: 1, retain: 1 } } });
    await followInGroup([wal, data], "keep-1", "pg");
    const at = "2030-01-01T00:02:30.000Z";

    const found = await findDueCloudsnaps({ at }, clusterOver(store), readCatalogs);
    expect(found.skipped).toEqual([]);
    expect(found.due).toHaveLength(1);
    expect(found.due[0]).toMatchObject({
      copy: "cloudsnap",
      volume: "pg-data",
      with: [{ volume: "pg-wal", volumeId: wal.id }],
      operation: {
        kind: "cloudsnap",
        volume: "pg-data",
        node: "node-1",
        params: { schedule: "interval", group: "pg", with: ["pg-wal"] },
      },
    });
    // Named by all its volumes: one that joins the group within a slot makes a new operation.
    expect(found.due[0]!.operation.requestToken).toBe(
      `cloudsnap:${data.id}:${wal.id}:interval:2030-01-01T00:02:00.000Z:1`,
    );

    // Attached to two nodes, the group cannot be snapshotted at one point: skipped, saying so.
    await store.volumes.updateIfEpoch(wal.id, (await store.volumes.get(wal.id)).epoch, {
      attachedNode: "node-2",
    });
    const split = await findDueCloudsnaps({ at }, clusterOver(store), readCatalogs);
    expect(split.due).toEqual([]);
    expect(split.skipped).toEqual([
      { volume: "pg-data", reason: "its group's volumes are attached to different nodes (node-1, node-2)" },
    ]);
    await store.volumes.updateIfEpoch(wal.id, (await store.volumes.get(wal.id)).epoch, {
      attachedNode: "node-1",
    });

    // Each volume has two scheduled cloudsnaps now: the older of each goes, in one operation.
    for (const volume of [data, wal]) {
      catalogs.set(volume.id, [
        entry(volume.id, "20300101T000100000Z", "interval"),
        entry(volume.id, "20300101T000200000Z", "interval"),
      ]);
    }
    const started = await applyRetention(
      {
        volume: "pg-data",
        volumeId: data.id,
        with: found.due[0]!.with,
        node: "node-1",
        policy: "keep-1",
        cloudsnap: `${data.id}-20300101T000200000Z`,
        at,
      },
      clusterOver(store),
      readCatalogs,
    );
    expect(started.expired).toEqual([`${data.id}-20300101T000100000Z`, `${wal.id}-20300101T000100000Z`]);
    expect((await store.operations.get(started.operationId!)).params).toEqual({
      cloudsnaps: started.expired,
    });
  });

  it("snapshots a group's volumes together and a volume alone, on their node, expiring what the policy no longer keeps", async () => {
    await registerAll(store, [liveNode("node-1", "a"), liveNode("node-2", "b")]);
    const data = await volumeWith(store, "pg-data", [replica("node-2")], "node-2");
    const wal = await volumeWith(store, "pg-wal", [replica("node-2")]);
    const solo = await volumeWith(store, "solo", [replica("node-1")]);
    await store.policies.create({
      name: "snappy",
      snapshots: { interval: { minutes: 15, retain: 2 }, daily: { time: "00:00", maxAge: "2d" } },
    });
    await followInGroup([data, wal], "snappy", "pg");
    await store.policies.assign({ volumeId: solo.id, volumeName: "solo", policy: "snappy" });
    const taken = (volumeId: string, name: string, createdAt: string) =>
      store.snapshots.create({ volumeId, name, sizeBytes: 4096, createdAt });
    // solo: its daily is done; two interval snapshots and one by hand, all before this slot.
    await taken(solo.id, "daily-20300101T0000Z", "2030-01-01T00:00:01.000Z");
    await taken(solo.id, "interval-20291231T2330Z", "2029-12-31T23:30:01.000Z");
    await taken(solo.id, "before-upgrade", "2029-12-31T23:40:00.000Z");
    await taken(solo.id, "interval-20291231T2345Z", "2029-12-31T23:45:01.000Z");
    // pg-wal has dailies: 2 days is the limit, at the execution's start (00:07).
    await taken(wal.id, "daily-20291229T0000Z", "2029-12-29T00:00:01.000Z");
    await taken(wal.id, "daily-20291230T0000Z", "2029-12-30T00:08:00.000Z");

    const found = await findDueCloudsnaps(
      { at: "2030-01-01T00:07:00.000Z" },
      clusterOver(store),
      readCatalogs,
    );
    expect(found.skipped).toEqual([]);
    const byVolume = Object.fromEntries(found.due.map((due) => [due.volume, due]));
    expect(Object.keys(byVolume).sort()).toEqual(["pg-data", "solo"]);
    expect(byVolume["pg-data"]).toMatchObject({
      copy: "snapshot",
      schedule: "daily",
      slot: "2030-01-01T00:00:00.000Z",
      operation: {
        kind: "scheduled-snapshot",
        node: "node-2",
        params: {
          snapshot: "daily-20300101T0000Z",
          schedule: "daily",
          with: ["pg-wal"],
          expire: [{ volume: "pg-wal", snapshot: "daily-20291229T0000Z" }],
        },
      },
    });
    expect(byVolume["solo"]!.operation).toEqual({
      kind: "scheduled-snapshot",
      volume: "solo",
      node: "node-1",
      requestToken: `snapshot:${solo.id}:interval:2030-01-01T00:00:00.000Z:1`,
      params: {
        snapshot: "interval-20300101T0000Z",
        schedule: "interval",
        expire: [{ volume: "solo", snapshot: "interval-20291231T2330Z" }],
      },
    });
    // The operations are what start-operation takes, both attempts.
    for (const due of found.due) {
      expect(StartOperationRequest.safeParse(due.operation).success).toBe(true);
      expect(due.secondAttempt.requestToken).not.toBe(due.operation.requestToken);
    }
  });

  it("skips a group attached to two nodes, saying so", async () => {
    await registerAll(store, [liveNode("node-1", "a"), liveNode("node-2", "b")]);
    const data = await volumeWith(store, "pg-data", [replica("node-1")], "node-1");
    const wal = await volumeWith(store, "pg-wal", [replica("node-2")], "node-2");
    await store.policies.create({ name: "snappy", snapshots: { interval: { minutes: 15, retain: 2 } } });
    await followInGroup([data, wal], "snappy", "pg");
    const found = await findDueCloudsnaps({ at: NOW.toISOString() }, clusterOver(store), readCatalogs);
    expect(found).toEqual({
      due: [],
      skipped: [
        { volume: "pg-data", reason: "its group's volumes are attached to different nodes (node-1, node-2)" },
      ],
    });
  });

  it("drops the assignment of a volume that is gone, and keeps those of volumes that exist", async () => {
    await registerAll(store, [liveNode("node-1", "a")]);
    const kept = await volumeWith(store, "kept", [replica("node-1")]);
    const gone = await volumeWith(store, "gone", [replica("node-1")]);
    await store.policies.create({ name: "daily", schedules: { daily: { time: "01:00", retain: 2 } } });
    for (const volume of [kept, gone]) {
      await store.policies.assign({ volumeId: volume.id, volumeName: volume.name, policy: "daily" });
    }
    await store.volumes.delete(gone.id, gone.epoch);

    const found = await findDueCloudsnaps({ at: NOW.toISOString() }, clusterOver(store), readCatalogs);
    expect(found.due.map((due) => due.volume)).toEqual(["kept"]);
    expect((await store.policies.assignments()).map((assignment) => assignment.volumeName)).toEqual(["kept"]);
    // The policy no longer counts the deleted volume as a follower.
    await store.policies.unassign(kept.id);
    await store.policies.delete("daily");
  });

  it("retention by age starts the deletion of cloudsnaps older than maxAge at the execution's start", async () => {
    await registerAll(store, [liveNode("node-1", "a")]);
    const volume = await volumeWith(store, "orders", [replica("node-1")]);
    await store.policies.create({ name: "hour", schedules: { interval: { minutes: 1, maxAge: "1h" } } });
    const stamps = ["20300101T000000000Z", "20300101T003000000Z", "20300101T010000000Z"];
    catalogs.set(
      volume.id,
      stamps.map((stamp) => entry(volume.id, stamp, "interval")),
    );
    const input = { volume: "orders", volumeId: volume.id, node: "node-1", policy: "hour", cloudsnap: "c" };
    const retained = (at: string) => applyRetention({ ...input, at }, clusterOver(store), readCatalogs);
    expect(await retained("2030-01-01T01:00:00.000Z")).toEqual({ expired: [], operationId: null });
    expect((await retained("2030-01-01T01:30:00.001Z")).expired).toEqual([
      `${volume.id}-${stamps[0]}`,
      `${volume.id}-${stamps[1]}`,
    ]);
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
