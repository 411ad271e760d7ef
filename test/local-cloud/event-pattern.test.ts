/**
 * The local bus's EventBridge pattern matcher, against the examples of the EventBridge user guide
 * ("Creating event patterns", "Content filtering", "Comparison operators", "Matching null values and
 * empty strings"): each pattern with events it must match and near misses it must not.
 */
import { describe, expect, it } from "vitest";
import {
  type EventPattern,
  matchesEventPattern,
  validateEventPattern,
} from "../../infra/local/event-bus/event-pattern.js";

interface Case {
  name: string;
  pattern: EventPattern;
  matches: unknown[];
  misses: unknown[];
}

/** The EC2 event of "Creating event patterns", with fields to vary. */
const ec2Event = (detail: Record<string, unknown>, envelope: Record<string, unknown> = {}) => ({
  version: "0",
  id: "6a7e8feb-b491-4cf7-a9f1-bf3703467718",
  "detail-type": "EC2 Instance State-change Notification",
  source: "aws.ec2",
  account: "123456789012",
  time: "2017-12-22T18:43:48Z",
  region: "us-west-1",
  resources: ["arn:aws:ec2:us-west-1:123456789012:instance/i-1234567890abcdef0"],
  detail: { "instance-id": "i-1234567890abcdef0", state: "terminated", ...detail },
  ...envelope,
});

const cases: Case[] = [
  {
    name: "fields are ANDed, nested as in the event (the EC2 termination example)",
    pattern: {
      source: ["aws.ec2"],
      "detail-type": ["EC2 Instance State-change Notification"],
      detail: { state: ["terminated"] },
    },
    matches: [ec2Event({})],
    misses: [
      ec2Event({ state: "running" }),
      ec2Event({}, { source: "aws.fargate" }),
      ec2Event({}, { detail: undefined }),
      // The field must be at the same nesting: a top-level "state" is not detail.state.
      { source: "aws.ec2", "detail-type": "EC2 Instance State-change Notification", state: "terminated" },
    ],
  },
  {
    name: "a leaf array lists alternatives (OR)",
    pattern: { source: ["aws.ec2", "aws.fargate"] },
    matches: [{ source: "aws.ec2" }, { source: "aws.fargate" }],
    misses: [{ source: "aws.s3" }, {}, { source: "AWS.EC2" }],
  },
  {
    name: "an event array matches when any of its elements does",
    pattern: { resources: ["arn:aws:ec2:us-west-1:123456789012:instance/i-1234567890abcdef0"] },
    matches: [
      ec2Event({}),
      { resources: ["other", "arn:aws:ec2:us-west-1:123456789012:instance/i-1234567890abcdef0"] },
    ],
    misses: [{ resources: [] }, { resources: ["other"] }],
  },
  {
    name: "exact matching is by type: numbers by value, strings case-sensitively, booleans",
    pattern: { detail: { count: [5], flag: [true], name: ["Alice"] } },
    matches: [
      { detail: { count: 5.0, flag: true, name: "Alice" } },
      { detail: { count: 5, flag: true, name: "Alice" } },
    ],
    misses: [
      { detail: { count: "5", flag: true, name: "Alice" } },
      { detail: { count: 5, flag: "true", name: "Alice" } },
      { detail: { count: 5, flag: true, name: "alice" } },
      { detail: { count: 5.5, flag: true, name: "Alice" } },
    ],
  },
  {
    name: "empty string matches only an empty string",
    pattern: { detail: { eventVersion: [""] } },
    matches: [{ detail: { eventVersion: "", responseElements: null } }],
    misses: [{ detail: { eventVersion: null } }, { detail: {} }, { detail: { eventVersion: " " } }],
  },
  {
    name: "null matches only null, not an empty string or an absent field",
    pattern: { detail: { responseElements: [null] } },
    matches: [{ detail: { eventVersion: "", responseElements: null } }],
    misses: [
      { detail: { responseElements: "" } },
      { detail: {} },
      { detail: { responseElements: { a: 1 } } },
    ],
  },
  {
    name: "prefix (on strings only)",
    pattern: { time: [{ prefix: "2017-10-02" }] },
    matches: [{ time: "2017-10-02T18:43:48Z" }, { time: "2017-10-02" }],
    misses: [{ time: "2017-10-03T18:43:48Z" }, { time: "x2017-10-02" }, { time: 20171002 }, {}],
  },
  {
    name: "prefix ignoring case",
    pattern: { service: [{ prefix: { "equals-ignore-case": "eventb" } }] },
    matches: [{ service: "EventBridge" }, { service: "EVENTBRIDGE" }, { service: "eventb" }],
    misses: [{ service: "Amazon EventBridge" }, { service: "event" }],
  },
  {
    name: "suffix (on strings only)",
    pattern: { FileName: [{ suffix: ".png" }] },
    matches: [{ FileName: "image.png" }, { FileName: ".png" }],
    misses: [{ FileName: "image.png.txt" }, { FileName: "image.PNG" }, { FileName: null }],
  },
  {
    name: "suffix ignoring case",
    pattern: { service: [{ suffix: { "equals-ignore-case": "tBridge" } }] },
    matches: [{ service: "EventBridge" }, { service: "EVENTBRIDGE" }],
    misses: [{ service: "EventBridges" }, { service: "bridge" }],
  },
  {
    name: "equals-ignore-case",
    pattern: { Name: [{ "equals-ignore-case": "alice" }] },
    matches: [{ Name: "Alice" }, { Name: "ALICE" }, { Name: "alice" }],
    misses: [{ Name: "Alicia" }, { Name: " alice" }, {}],
  },
  {
    name: "anything-but a string: any present value but that one",
    pattern: { detail: { state: [{ "anything-but": "initializing" }] } },
    matches: [{ detail: { state: "running" } }, { detail: { state: "Initializing" } }],
    misses: [{ detail: { state: "initializing" } }, { detail: {} }, {}],
  },
  {
    name: "anything-but a list of strings",
    pattern: { detail: { state: [{ "anything-but": ["stopped", "overloaded"] }] } },
    matches: [{ detail: { state: "running" } }],
    misses: [{ detail: { state: "stopped" } }, { detail: { state: "overloaded" } }],
  },
  {
    name: "anything-but numbers; an event array matches if any element is not excluded",
    pattern: { detail: { "x-limit": [{ "anything-but": [100, 200, 300] }] } },
    matches: [
      { detail: { "x-limit": 301.8 } },
      { detail: { "x-limit": 100.1 } },
      { detail: { "x-limit": [100, 50] } },
    ],
    misses: [{ detail: { "x-limit": 200 } }, { detail: { "x-limit": [100, 300] } }, { detail: {} }],
  },
  {
    name: "anything-but a prefix",
    pattern: { Region: [{ "anything-but": { prefix: "us-" } }] },
    // "Anything-but matching matches anything except what's provided": a value that is not a
    // string cannot begin with "us-", so it is not excluded.
    matches: [{ Region: "eu-west-1" }, { Region: "US-east-1" }, { Region: 5 }],
    misses: [{ Region: "us-east-1" }, {}],
  },
  {
    name: "anything-but a list of prefixes",
    pattern: { state: [{ "anything-but": { prefix: ["init", "error"] } }] },
    matches: [{ state: "running" }],
    misses: [{ state: "initializing" }, { state: "error-42" }],
  },
  {
    name: "anything-but a list of suffixes",
    pattern: { "instance-id": [{ "anything-but": { suffix: ["1234", "6789"] } }] },
    matches: [{ "instance-id": "i-0000" }],
    misses: [{ "instance-id": "i-1234" }, { "instance-id": "i-6789" }],
  },
  {
    name: "anything-but a suffix",
    pattern: { FileName: [{ "anything-but": { suffix: ".png" } }] },
    matches: [{ FileName: "notes.txt" }],
    misses: [{ FileName: "image.png" }],
  },
  {
    name: "anything-but ignoring case (a value or a list)",
    pattern: {
      state: [{ "anything-but": { "equals-ignore-case": "initializing" } }],
      phase: [{ "anything-but": { "equals-ignore-case": ["Stopped", "Overloaded"] } }],
    },
    matches: [{ state: "running", phase: "running" }],
    misses: [
      { state: "INITIALIZING", phase: "running" },
      { state: "running", phase: "STOPPED" },
      { state: "running", phase: "overloaded" },
    ],
  },
  {
    name: "anything-but a wildcard",
    pattern: { FilePath: [{ "anything-but": { wildcard: "*/lib/*" } }] },
    matches: [{ FilePath: "/usr/bin/strata" }, { FilePath: "lib/x" }],
    misses: [{ FilePath: "/usr/lib/strata.so" }, { FilePath: "dir/lib/" }],
  },
  {
    name: "numeric ranges (JSON numbers only)",
    pattern: {
      detail: {
        "c-count": [{ numeric: [">", 0, "<=", 5] }],
        "d-count": [{ numeric: ["<", 10] }],
        "x-limit": [{ numeric: ["=", 3.018e2] }],
      },
    },
    matches: [
      { detail: { "c-count": 5, "d-count": 3, "x-limit": 301.8 } },
      { detail: { "c-count": 0.000001, "d-count": -4, "x-limit": 301.8 } },
    ],
    misses: [
      { detail: { "c-count": 0, "d-count": 3, "x-limit": 301.8 } },
      { detail: { "c-count": 5.000001, "d-count": 3, "x-limit": 301.8 } },
      { detail: { "c-count": 5, "d-count": 10, "x-limit": 301.8 } },
      { detail: { "c-count": 5, "d-count": 3, "x-limit": 301.81 } },
      { detail: { "c-count": "5", "d-count": 3, "x-limit": 301.8 } },
      { detail: { "d-count": 3, "x-limit": 301.8 } },
    ],
  },
  {
    name: "numeric >= and single bounds",
    pattern: { price: [{ numeric: [">=", 10, "<", 20] }] },
    matches: [{ price: 10 }, { price: 19.99 }, { price: [5, 15] }],
    misses: [{ price: 9.99 }, { price: 20 }, { price: [5, 25] }],
  },
  {
    name: "exists: true needs a leaf value, whatever it is (null included)",
    pattern: { detail: { "c-count": [{ exists: true }] } },
    matches: [{ detail: { "c-count": 5 } }, { detail: { "c-count": null } }, { detail: { "c-count": "" } }],
    misses: [{ detail: {} }, {}, { detail: { "c-count": { c1: 100 } } }, { detail: { "c-count": [] } }],
  },
  {
    name: "exists: false matches an absent field, and an intermediate (object) node",
    pattern: { detail: { "c-count": [{ exists: false }] } },
    matches: [{ detail: { state: "running" } }, {}, { detail: { "c-count": { c1: 100 } } }],
    misses: [{ detail: { "c-count": 5 } }, { detail: { "c-count": null } }],
  },
  {
    name: "wildcard: * matches any run of characters, none included",
    pattern: { source: [{ wildcard: "Simple*Service" }] },
    matches: [{ source: "SimpleQueueService" }, { source: "SimpleService" }],
    misses: [{ source: "SimpleQueueServices" }, { source: "simpleQueueService" }, { source: 5 }],
  },
  {
    name: "wildcard with several stars (a .png within the folder dir)",
    pattern: {
      EventBusArn: [{ wildcard: "arn:aws:events:us-east-1:*:event-bus/*" }],
      key: [{ wildcard: "dir/*.png" }],
    },
    matches: [
      { EventBusArn: "arn:aws:events:us-east-1:123456789012:event-bus/default", key: "dir/a/b.png" },
      { EventBusArn: "arn:aws:events:us-east-1::event-bus/", key: "dir/.png" },
    ],
    misses: [
      { EventBusArn: "arn:aws:events:us-west-2:123456789012:event-bus/default", key: "dir/a.png" },
      { EventBusArn: "arn:aws:events:us-east-1:123456789012:event-bus/default", key: "other/a.png" },
    ],
  },
  {
    name: "wildcard escapes: \\* is an asterisk, \\\\ a backslash; other characters are literal",
    pattern: { a: [{ wildcard: "2\\*3=?" }], b: [{ wildcard: "C:\\\\dir\\\\*" }] },
    matches: [{ a: "2*3=?", b: "C:\\dir\\file" }],
    misses: [
      { a: "2x3=?", b: "C:\\dir\\file" },
      { a: "2*3=6", b: "C:\\dir\\file" },
      { a: "2*3=?", b: "C:/dir/file" },
    ],
  },
  {
    name: "cidr, IPv4 and IPv6",
    pattern: { detail: { "source-ip": [{ cidr: "10.0.0.0/24" }, { cidr: "2001:db8::/32" }] } },
    matches: [
      { detail: { "source-ip": "10.0.0.33" } },
      { detail: { "source-ip": "10.0.0.255" } },
      { detail: { "source-ip": "2001:db8::1" } },
    ],
    misses: [
      { detail: { "source-ip": "10.0.1.0" } },
      { detail: { "source-ip": "2001:db9::1" } },
      { detail: { "source-ip": "not an address" } },
      { detail: { "source-ip": 167772193 } },
    ],
  },
  {
    name: "$or between fields (Location is New York, or Day is Monday)",
    pattern: { $or: [{ Location: ["New York"] }, { Day: ["Monday"] }] },
    matches: [
      { Location: "New York", Day: "Friday" },
      { Location: "Boston", Day: "Monday" },
    ],
    misses: [{ Location: "Boston", Day: "Friday" }, {}],
  },
  {
    name: "$or ANDed with fields, and nested (source AND (metricName OR (metricType AND namespace AND (metricId OR spaceId)) OR scope))",
    pattern: {
      source: ["aws.cloudwatch"],
      $or: [
        { metricName: ["CPUUtilization", "ReadLatency"] },
        {
          metricType: ["MetricType"],
          namespace: ["AWS/EC2", "AWS/ES"],
          $or: [{ metricId: [1234] }, { spaceId: [1000] }],
        },
        { scope: ["Service"] },
      ],
    },
    matches: [
      { source: "aws.cloudwatch", metricName: "ReadLatency" },
      { source: "aws.cloudwatch", metricType: "MetricType", namespace: "AWS/ES", spaceId: 1000 },
      { source: "aws.cloudwatch", scope: "Service" },
    ],
    misses: [
      { source: "aws.s3", metricName: "ReadLatency" },
      { source: "aws.cloudwatch", metricType: "MetricType", namespace: "AWS/ES" },
      { source: "aws.cloudwatch", metricType: "MetricType", spaceId: 1000 },
      { source: "aws.cloudwatch" },
    ],
  },
  {
    name: "$or inside a nested object",
    pattern: {
      detail: { $or: [{ source: ["aws.cloudwatch"] }, { "detail-type": ["CloudWatch Alarm State Change"] }] },
    },
    matches: [
      { detail: { source: "aws.cloudwatch" } },
      { detail: { "detail-type": "CloudWatch Alarm State Change" } },
    ],
    misses: [{ source: "aws.cloudwatch" }, { detail: { source: "aws.ec2" } }],
  },
  {
    name: "objects in an event array: one element must match the whole sub-pattern",
    pattern: { employees: { firstName: ["Anna"], lastName: ["Smith"] } },
    matches: [
      {
        employees: [
          { firstName: "John", lastName: "Doe" },
          { firstName: "Anna", lastName: "Smith" },
        ],
      },
      {
        employees: [[{ firstName: "Anna", lastName: "Smith" }], [{ firstName: "Peter", lastName: "Jones" }]],
      },
    ],
    misses: [
      {
        employees: [
          { firstName: "Anna", lastName: "Jones" },
          { firstName: "Peter", lastName: "Smith" },
        ],
      },
    ],
  },
];

describe("matchesEventPattern", () => {
  describe.each(cases)("$name", ({ pattern, matches, misses }) => {
    it("is a valid pattern", () => {
      expect(validateEventPattern(pattern)).toBe(pattern);
    });

    it.each(matches.map((event) => [JSON.stringify(event), event]))("matches %s", (_, event) => {
      expect(matchesEventPattern(pattern, event)).toBe(true);
    });

    it.each(misses.map((event) => [JSON.stringify(event), event]))("does not match %s", (_, event) => {
      expect(matchesEventPattern(pattern, event)).toBe(false);
    });
  });

  it("does not match events that are not objects", () => {
    for (const event of [null, "aws.ec2", 5, ["aws.ec2"]]) {
      expect(matchesEventPattern({ source: ["aws.ec2"] }, event)).toBe(false);
    }
  });

  it("does not read inherited properties as event fields", () => {
    expect(matchesEventPattern({ constructor: [{ exists: true }] }, {})).toBe(false);
    expect(matchesEventPattern({ toString: [{ exists: false }] }, {})).toBe(true);
  });
});

describe("validateEventPattern", () => {
  const refusals: [string, unknown, RegExp][] = [
    ["a pattern that is not an object", ["aws.ec2"], /at \$: a pattern must be a JSON object/],
    ["an empty pattern", {}, /at \$: a pattern object must name at least one field/],
    ["a leaf that is not an array", { source: "aws.ec2" }, /at \$\.source: .*must be an array/],
    ["a nested leaf that is not an array", { detail: { state: 5 } }, /at \$\.detail\.state: /],
    ["an empty array", { detail: { state: [] } }, /at \$\.detail\.state: empty arrays are not allowed/],
    ["an array inside a leaf array", { source: [["aws.ec2"]] }, /at \$\.source\[0\]: /],
    [
      "an unknown content filter",
      { source: [{ contains: "ec2" }] },
      /at \$\.source\[0\]\.contains: unknown filter operator "contains"/,
    ],
    [
      "two operators in one filter",
      { source: [{ prefix: "a", suffix: "b" }] },
      /at \$\.source\[0\]: .*exactly one operator/,
    ],
    ["a prefix that is not a string", { source: [{ prefix: 5 }] }, /at \$\.source\[0\]\.prefix: /],
    [
      "a prefix with another option",
      { source: [{ prefix: { "ignore-case": "a" } }] },
      /at \$\.source\[0\]\.prefix: /,
    ],
    [
      "equals-ignore-case of a number",
      { source: [{ "equals-ignore-case": 5 }] },
      /\$\.source\[0\]\.equals-ignore-case: expected a string/,
    ],
    [
      "a numeric filter with a bad operator",
      { n: [{ numeric: ["!=", 5] }] },
      /at \$\.n\[0\]\.numeric\[0\]: unknown numeric operator "!="/,
    ],
    [
      "a numeric filter with no number",
      { n: [{ numeric: [">", "5"] }] },
      /at \$\.n\[0\]\.numeric\[1\]: expected a number/,
    ],
    ["a numeric filter of odd length", { n: [{ numeric: [">", 0, "<"] }] }, /at \$\.n\[0\]\.numeric: /],
    [
      "a numeric range of two lower bounds",
      { n: [{ numeric: [">", 0, ">", 5] }] },
      /lower bound .* followed by an upper bound/,
    ],
    [
      "a numeric range with = in it",
      { n: [{ numeric: ["=", 0, "<", 5] }] },
      /lower bound .* followed by an upper bound/,
    ],
    [
      "an empty numeric range",
      { n: [{ numeric: [">", 5, "<", 5] }] },
      /lower bound 5 must be less than the upper bound 5/,
    ],
    [
      "a number beyond numeric matching's range",
      { n: [{ numeric: [">", 6e9] }] },
      /limited to values between -5\.0e9 and 5\.0e9/,
    ],
    [
      "exists that is not a boolean",
      { a: [{ exists: "yes" }] },
      /at \$\.a\[0\]\.exists: exists takes true or false/,
    ],
    ["consecutive wildcards", { a: [{ wildcard: "a**b" }] }, /at \$\.a\[0\]\.wildcard: consecutive wildcard/],
    ["a backslash escaping another character", { a: [{ wildcard: "a\\b" }] }, /may only escape/],
    ["anything-but of a mixed list", { a: [{ "anything-but": ["a", 1] }] }, /only strings or only numbers/],
    ["anything-but of null", { a: [{ "anything-but": [null] }] }, /only strings or only numbers/],
    ["anything-but of an empty list", { a: [{ "anything-but": [] }] }, /empty arrays are not allowed/],
    [
      "anything-but of numeric",
      { a: [{ "anything-but": { numeric: [">", 1] } }] },
      /\$\.a\[0\]\.anything-but\.numeric: anything-but does not take "numeric"/,
    ],
    [
      "anything-but of a prefix that is not a string",
      { a: [{ "anything-but": { prefix: 5 } }] },
      /anything-but\.prefix: expected a string/,
    ],
    [
      "anything-but of an empty suffix list",
      { a: [{ "anything-but": { suffix: [] } }] },
      /anything-but\.suffix: empty arrays/,
    ],
    [
      "anything-but of a bad wildcard",
      { a: [{ "anything-but": { wildcard: ["ok*", "a**"] } }] },
      /anything-but\.wildcard\[1\]: consecutive/,
    ],
    [
      "a cidr that is not a block",
      { ip: [{ cidr: "10.0.0.0" }] },
      /at \$\.ip\[0\]\.cidr: expected an IPv4 or IPv6 CIDR block/,
    ],
    ["a cidr prefix too long", { ip: [{ cidr: "10.0.0.0/33" }] }, /CIDR block/],
    [
      "$or with one alternative",
      { $or: [{ a: ["x"] }] },
      /at \$\.\$or: \$or must be an array of at least two patterns/,
    ],
    ["$or with a bad alternative", { $or: [{ a: ["x"] }, { b: "y" }] }, /at \$\.\$or\[1\]\.b: /],
    ["an infinite number", { a: [Number.POSITIVE_INFINITY] }, /at \$\.a\[0\]: numbers must be finite/],
  ];

  it.each(refusals)("refuses %s", (_, pattern, message) => {
    expect(() => validateEventPattern(pattern)).toThrow(message);
  });

  it("accepts what EventBridge documents", () => {
    const pattern = {
      source: ["aws.ec2", { prefix: "aws." }],
      detail: {
        state: [{ "anything-but": { "equals-ignore-case": ["stopped"] } }],
        "c-count": [{ numeric: [">=", -5e9, "<", 5e9] }],
        flag: [true, false, null, "", 0],
        ip: [{ cidr: "::1/128" }],
      },
    };
    expect(validateEventPattern(pattern)).toBe(pattern);
  });
});
