import { describe, expect, it } from "vitest";
import type { StateStore } from "../../core/state/store.js";
import { freshStorePerTest } from "./state-harness.js";

let store: StateStore;
freshStorePerTest(
  (fresh) => {
    store = fresh;
  },
  () => new Date("2026-12-03T10:00:00.000Z"),
);

const hourly = { interval: { minutes: 60, retain: 24 }, daily: { time: "02:00", retain: 7 } };

describe("schedule policies", () => {
  it("are created once, read back, listed and deleted", async () => {
    const created = await store.policies.create({ name: "hourly", schedules: hourly });
    expect(created).toEqual({ name: "hourly", schedules: hourly, createdAt: "2026-12-03T10:00:00.000Z" });
    await expect(store.policies.create({ name: "hourly", schedules: hourly })).rejects.toThrow(
      'policy "hourly" already exists',
    );
    expect(await store.policies.get("hourly")).toEqual(created);
    expect(await store.policies.list()).toEqual([created]);
    await store.policies.delete("hourly");
    await expect(store.policies.get("hourly")).rejects.toThrow('policy "hourly" not found');
    await expect(store.policies.delete("hourly")).rejects.toThrow('policy "hourly" not found');
  });

  it.each([
    [{ interval: { minutes: 0, retain: 1 } }, "schedules.interval.minutes must be at least 1 minute"],
    [
      { daily: { time: "25:00", retain: 1 } },
      'schedules.daily.time must be a UTC time "HH:MM" from 00:00 to 23:59',
    ],
    [
      { monthly: { date: 31, time: "01:00", retain: 1 } },
      "schedules.monthly.date must be a day of the month, 1 to 28",
    ],
    [{ weekly: { day: "someday", time: "01:00", retain: 1 } }, "schedules.weekly.day must be a weekday"],
    [{ daily: { time: "01:00", retain: 0 } }, "schedules.daily.retain must keep at least 1 cloudsnap"],
    [{}, "schedules a policy needs at least one schedule: interval, daily, weekly or monthly"],
    [{ hourly: { retain: 1 } }, 'Unrecognized key: "hourly"'],
  ])("refuses an impossible schedule %j, naming the field", async (schedules, message) => {
    const refused = store.policies.create({ name: "bad", schedules } as never);
    await expect(refused).rejects.toMatchObject({ code: "INVALID_ARGUMENT" });
    await expect(store.policies.create({ name: "bad", schedules } as never)).rejects.toThrow(message);
    expect(await store.policies.list()).toEqual([]);
  });

  it("are assigned to volumes, one each, found in one partition, and not deleted while followed", async () => {
    await store.policies.create({ name: "hourly", schedules: hourly });
    await store.policies.create({ name: "nightly", schedules: { daily: { time: "03:30", retain: 3 } } });
    await expect(
      store.policies.assign({ volumeId: "v-1", volumeName: "orders", policy: "missing" }),
    ).rejects.toThrow('policy "missing" not found');

    await store.policies.assign({ volumeId: "v-1", volumeName: "orders", policy: "hourly" });
    await store.policies.assign({ volumeId: "v-2", volumeName: "ledger", policy: "hourly", group: "books" });
    // A second assignment replaces the first.
    await store.policies.assign({ volumeId: "v-1", volumeName: "orders", policy: "nightly" });
    expect(await store.policies.assignmentOf("v-1")).toMatchObject({ policy: "nightly" });
    expect(await store.policies.assignmentOf("v-3")).toBeUndefined();
    expect(
      (await store.policies.assignments()).map(({ volumeId, policy, group }) => ({
        volumeId,
        policy,
        group,
      })),
    ).toEqual([
      { volumeId: "v-1", policy: "nightly", group: undefined },
      { volumeId: "v-2", policy: "hourly", group: "books" },
    ]);

    await expect(store.policies.delete("hourly")).rejects.toThrow(
      'policy "hourly" is assigned to volume(s) "ledger": give them another policy or none first',
    );
    await store.policies.unassign("v-2");
    await store.policies.unassign("v-2");
    await store.policies.delete("hourly");
    expect((await store.policies.list()).map((policy) => policy.name)).toEqual(["nightly"]);
  });
});
