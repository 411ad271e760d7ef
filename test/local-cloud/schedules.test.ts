import { describe, expect, it } from "vitest";
import { ratePeriodMs, strataSchedules, type WorkflowScheduleDefinition } from "../../infra/schedules.js";

const withExpression = (scheduleExpression: string): WorkflowScheduleDefinition => ({
  ...strataSchedules[0]!,
  scheduleExpression,
});

describe("the schedules the local cloud runs as timers", () => {
  it("gives every schedule of infra/schedules.ts a period, as AWS's Scheduler runs it", () => {
    expect(strataSchedules.map((schedule) => [schedule.name, ratePeriodMs(schedule)])).toEqual([
      ["cloudsnaps", 60_000],
    ]);
  });

  it("reads rate() expressions in minutes, hours and days, and refuses the forms it cannot run", () => {
    expect(ratePeriodMs(withExpression("rate(5 minutes)"))).toBe(300_000);
    expect(ratePeriodMs(withExpression("rate(1 hour)"))).toBe(3_600_000);
    expect(ratePeriodMs(withExpression("rate(2 days)"))).toBe(172_800_000);
    expect(() => ratePeriodMs(withExpression("cron(0 2 * * ? *)"))).toThrow(
      "schedule cloudsnaps: the local cloud runs rate(N minutes|hours|days) schedules, not cron(0 2 * * ? *)",
    );
  });
});
