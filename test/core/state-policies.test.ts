import { DynamoDBClient } from "@aws-sdk/client-dynamodb";
import { DynamoDBDocumentClient, PutCommand } from "@aws-sdk/lib-dynamodb";
import { describe, expect, it } from "vitest";
import { policyKey } from "../../core/state/keys.js";
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

  it("take cron schedules, retention by age, and local snapshot schedules; one stored before those reads as it was", async () => {
    const policy = {
      name: "gold",
      schedules: { cron: { expression: "0 */6 * * *", retain: 4, maxAge: "2d" } },
      snapshots: { interval: { minutes: 15, maxAge: "12h" }, daily: { time: "02:00", retain: 7 } },
    };
    expect(await store.policies.create(policy)).toEqual({ ...policy, createdAt: "2026-12-03T10:00:00.000Z" });
    expect(await store.policies.get("gold")).toEqual({ ...policy, createdAt: "2026-12-03T10:00:00.000Z" });
    expect(
      (
        await store.policies.create({
          name: "snaps-only",
          snapshots: { weekly: { day: "sunday", time: "03:00", retain: 2 } },
        })
      ).schedules,
    ).toBeUndefined();

    // What the first policy writer stored: schedules only, each with retain.
    const raw = DynamoDBDocumentClient.from(new DynamoDBClient({}));
    const old = { name: "legacy", schedules: hourly, createdAt: "2026-01-01T00:00:00.000Z" };
    await raw.send(new PutCommand({ TableName: store.tableName, Item: { ...policyKey("legacy"), ...old } }));
    raw.destroy();
    expect(await store.policies.get("legacy")).toEqual(old);
    expect((await store.policies.list()).map((found) => found.name).sort()).toEqual([
      "gold",
      "legacy",
      "snaps-only",
    ]);
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
    [{ daily: { time: "01:00", retain: 0 } }, "schedules.daily.retain must keep at least 1 copy"],
    [
      {},
      "invalid schedule policy: a policy needs at least one schedule: interval, daily, weekly, monthly or cron, under schedules (cloudsnaps) or snapshots",
    ],
    [{ hourly: { retain: 1 } }, 'Unrecognized key: "hourly"'],
    [
      { daily: { time: "01:00" } },
      "schedules.daily needs retain (how many copies to keep), maxAge (how long to keep them), or both",
    ],
    [
      { daily: { time: "01:00", maxAge: "7 days" } },
      'schedules.daily.maxAge must be a duration like 30m, 12h, 7d or 2w (a whole number and m, h, d or w), not "7 days"',
    ],
    [{ daily: { time: "01:00", maxAge: "30s" } }, "schedules.daily.maxAge must be a duration like"],
    [{ daily: { time: "01:00", maxAge: "0m" } }, "schedules.daily.maxAge must be at least 1m"],
    [
      { daily: { time: "01:00", maxAge: "4000d" } },
      "schedules.daily.maxAge must be at most 3650d (10 years)",
    ],
    [
      { cron: { expression: "0 25 * * *", retain: 1 } },
      'schedules.cron.expression field 2 (hour) "25" is not valid: it takes 0-23, *, lists (1,5), ranges (1-5) and steps (*/5)',
    ],
    [
      { cron: { expression: "0 0 0 * *", retain: 1 } },
      'schedules.cron.expression field 3 (day-of-month) "0" is not valid: it takes 1-31',
    ],
    [
      { cron: { expression: "*/10 * * * * *", retain: 1 } },
      "schedules.cron.expression has 6 fields: a seconds field would fire more often than once a minute, and the workflow runs every minute",
    ],
    [
      { cron: { expression: "0 6 * *", retain: 1 } },
      'schedules.cron.expression must have 5 fields "minute hour day-of-month month day-of-week" in UTC, e.g. "0 */6 * * *"; "0 6 * *" has 4',
    ],
    [
      { cron: { expression: "0 0 30 2 *", retain: 1 } },
      "schedules.cron.expression never fires: no date matches it",
    ],
  ])("refuses an impossible schedule %j, naming the field", async (schedules, message) => {
    // `as never`: the point is what the store does with a request its type would not allow.
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
