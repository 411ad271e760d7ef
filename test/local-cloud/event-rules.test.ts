/**
 * Strata's EventBridge rules (infra/event-rules.ts) against events shaped as AWS documents them
 * (test/fixtures/aws-events): each event is routed by exactly the rule meant for it, and the near
 * misses by none, so a rule that is too wide or too narrow fails here before it is deployed.
 */
import { readdirSync, readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { STRATA_EVENT_SOURCE, StrataDetailType, ZoneHealthDetail } from "../../core/events.js";
import { strataEventRules } from "../../infra/event-rules.js";
import { matchesEventPattern, validateEventPattern } from "../../infra/local/event-bus/event-pattern.js";

const FIXTURES = join(dirname(fileURLToPath(import.meta.url)), "..", "fixtures", "aws-events");

type AwsEvent = Record<string, unknown> & { detail: Record<string, unknown> };

const fixture = (name: string): AwsEvent => JSON.parse(readFileSync(join(FIXTURES, `${name}.json`), "utf8"));

const matchingRules = (event: unknown) =>
  strataEventRules.filter((rule) => matchesEventPattern(rule.eventPattern, event)).map((rule) => rule.name);

/** Every fixture and the one rule that must route it; null for the near misses. */
const routes: Record<string, string | null> = {
  "ec2-instance-state-change-terminated": "instance-state",
  "ec2-instance-state-change-stopping": "instance-state",
  "ec2-instance-state-change-running": null,
  "autoscaling-terminate-lifecycle-action": "autoscaling-lifecycle",
  "autoscaling-launch-lifecycle-action": "autoscaling-lifecycle",
  "ec2-spot-interruption-warning": "spot-interruption",
  "arc-autoshift-in-progress": "zonal-autoshift",
  "arc-autoshift-completed": "zonal-autoshift",
  "health-ec2-issue": "health",
  "health-rds-issue": null,
  "strata-node-offline": "strata",
  "strata-node-online": "strata",
  "strata-zone-offline": "strata",
  "strata-zone-online": "strata",
};

describe("strataEventRules", () => {
  it("has unique names", () => {
    const names = strataEventRules.map((rule) => rule.name);
    expect(new Set(names).size).toBe(names.length);
  });

  it.each(strataEventRules.map((rule) => [rule.name, rule]))(
    "%s is a pattern EventBridge accepts",
    (_, rule) => {
      expect(() => validateEventPattern(rule.eventPattern)).not.toThrow();
    },
  );

  it("every fixture has a route here", () => {
    const names = readdirSync(FIXTURES)
      .filter((name) => name.endsWith(".json"))
      .map((name) => name.replace(/\.json$/, ""));
    expect(names.sort()).toEqual(Object.keys(routes).sort());
  });

  it.each(Object.entries(routes))("%s is matched by %s", (name, rule) => {
    expect(matchingRules(fixture(name))).toEqual(rule === null ? [] : [rule]);
  });

  describe("near misses match no rule", () => {
    it("an EC2 state change from another source", () => {
      const event = { ...fixture("ec2-instance-state-change-terminated"), source: "custom.ec2" };
      expect(matchingRules(event)).toEqual([]);
    });

    it("a Strata event of an unknown detail-type", () => {
      const event = { ...fixture("strata-node-offline"), "detail-type": "Strata Node Rebooted" };
      expect(matchingRules(event)).toEqual([]);
    });

    it("a Strata detail-type from another source", () => {
      const event = { ...fixture("strata-zone-offline"), source: "aws.ec2" };
      expect(matchingRules(event)).toEqual([]);
    });

    it("an EC2 Health event that is a scheduled change, not an issue", () => {
      const event = fixture("health-ec2-issue");
      event.detail = { ...event.detail, eventTypeCategory: "scheduledChange" };
      expect(matchingRules(event)).toEqual([]);
    });

    it("an ARC practice run", () => {
      const event = { ...fixture("arc-autoshift-in-progress"), "detail-type": "Practice Run Started" };
      expect(matchingRules(event)).toEqual([]);
    });

    it.each(["pending", "running"])("an instance entering %s", (state) => {
      const event = fixture("ec2-instance-state-change-terminated");
      event.detail = { ...event.detail, state };
      expect(matchingRules(event)).toEqual([]);
    });
  });

  it.each(["stopped", "shutting-down"])("an instance entering %s is routed by instance-state", (state) => {
    const event = fixture("ec2-instance-state-change-terminated");
    event.detail = { ...event.detail, state };
    expect(matchingRules(event)).toEqual(["instance-state"]);
  });
});

describe("the fixtures", () => {
  const ENVELOPE = [
    "version",
    "id",
    "detail-type",
    "source",
    "account",
    "time",
    "region",
    "resources",
    "detail",
  ];

  it.each(Object.keys(routes))(
    "%s has EventBridge's full envelope, in the samples' account and region",
    (name) => {
      const event = fixture(name);
      expect(Object.keys(event)).toEqual(ENVELOPE);
      expect(event["version"]).toBe("0");
      expect(event["account"]).toBe("123456789012");
      expect(event["region"]).toBe("us-east-1");
      expect(Array.isArray(event["resources"])).toBe(true);
    },
  );

  it.each([
    ["strata-node-offline", StrataDetailType.nodeOffline],
    ["strata-node-online", StrataDetailType.nodeOnline],
  ])("%s carries a node's detail", (name, detailType) => {
    const event = fixture(name);
    expect(event["source"]).toBe(STRATA_EVENT_SOURCE);
    expect(event["detail-type"]).toBe(detailType);
    expect(Object.keys(event.detail).sort()).toEqual(
      ["clusterName", "nodeId", "zone", "instanceId", "reason", "observedAt"].sort(),
    );
  });

  const zoneFields = Object.keys(ZoneHealthDetail.shape);
  it.each([
    ["strata-zone-offline", StrataDetailType.zoneOffline, zoneFields],
    // Whether the zone's nodes stopped cleanly is said only of a zone going offline.
    ["strata-zone-online", StrataDetailType.zoneOnline, zoneFields.filter((key) => key !== "stoppedCleanly")],
  ])("%s carries a zone's detail", (name, detailType, fields) => {
    const event = fixture(name);
    expect(event["source"]).toBe(STRATA_EVENT_SOURCE);
    expect(event["detail-type"]).toBe(detailType);
    // Exactly what the health sweep puts: those fields of ZoneHealthDetail, no other.
    expect(Object.keys(event.detail).sort()).toEqual(fields.sort());
  });
});
