import { STRATA_EVENT_SOURCE, StrataDetailType } from "../core/events.js";
/**
 * Strata's EventBridge rules: the one definition both the local cloud (matched by
 * infra/local/event-bus/event-pattern.ts) and the CDK app (deployed as AWS::Events::Rule) use, so a
 * pattern that routes an event locally routes it the same way in AWS. Every rule delivers to the one
 * event intake Lambda, which decides the workflow; the target is therefore not part of a rule here.
 *
 * The pattern types below describe EventBridge's own pattern language, as the user guide documents it
 * ("Creating event patterns", "Comparison operators for use in event patterns").
 */

/** A value an event pattern compares a leaf field with exactly (strings case-sensitively). */
export type ExactValue = string | number | boolean | null;

/** `{"equals-ignore-case": "..."}`: on its own, or inside `prefix` and `suffix`. */
export interface IgnoreCase {
  readonly "equals-ignore-case": string;
}

/** What `anything-but` can exclude: values (all strings or all numbers), or the strings of one filter. */
export type AnythingBut =
  | string
  | number
  | readonly string[]
  | readonly number[]
  | { readonly prefix: string | readonly string[] }
  | { readonly suffix: string | readonly string[] }
  | { readonly "equals-ignore-case": string | readonly string[] }
  | { readonly wildcard: string | readonly string[] };

/** `["=", 5]`, `[">", 0]`, `[">", 0, "<=", 5]`: a comparison, or a lower then an upper bound. */
export type NumericRange = readonly (string | number)[];

/** The content filters of a leaf array: an object with exactly one operator. */
export type ContentFilter =
  | { readonly prefix: string | IgnoreCase }
  | { readonly suffix: string | IgnoreCase }
  | IgnoreCase
  | { readonly wildcard: string }
  | { readonly "anything-but": AnythingBut }
  | { readonly numeric: NumericRange }
  | { readonly exists: boolean }
  | { readonly cidr: string };

/** One element of a leaf array; the elements are alternatives (OR). */
export type LeafMatcher = ExactValue | ContentFilter;

/**
 * An EventBridge event pattern: each field is a nested pattern (for an object in the event), a leaf
 * array of alternatives, or, under the key `$or`, a list of sub-patterns of which one must match.
 * Fields are ANDed.
 */
export interface EventPattern {
  readonly [field: string]: EventPattern | readonly LeafMatcher[] | readonly EventPattern[];
}

export interface EventRuleDefinition {
  /** The rule's name (unique on the bus); the CDK app prefixes it with the stack's. */
  readonly name: string;
  readonly description: string;
  readonly eventPattern: EventPattern;
}

/**
 * The states after which an instance no longer serves its drives: stopping and shutting-down are
 * caught as early as EC2 reports them, stopped and terminated in case the earlier event was missed
 * (EventBridge delivers AWS service events on a best-effort basis). pending and running are not a
 * loss.
 */
const LOST_INSTANCE_STATES = ["stopping", "stopped", "shutting-down", "terminated"] as const;

export const strataEventRules: readonly EventRuleDefinition[] = [
  {
    name: "instance-state",
    description: "An EC2 instance stopping or terminating: its node's replicas are lost (node-loss)",
    eventPattern: {
      source: ["aws.ec2"],
      "detail-type": ["EC2 Instance State-change Notification"],
      detail: { state: LOST_INSTANCE_STATES },
    },
  },
  {
    name: "autoscaling-lifecycle",
    description:
      "An Auto Scaling lifecycle hook holding an instance: a terminating node is drained first, a launching one may take over a lost node's drives",
    eventPattern: {
      source: ["aws.autoscaling"],
      "detail-type": ["EC2 Instance-terminate Lifecycle Action", "EC2 Instance-launch Lifecycle Action"],
    },
  },
  {
    name: "spot-interruption",
    description: "A Spot Instance to be interrupted in two minutes: its node is about to be lost (node-loss)",
    eventPattern: {
      source: ["aws.ec2"],
      "detail-type": ["EC2 Spot Instance Interruption Warning"],
    },
  },
  {
    name: "zonal-autoshift",
    description: "AWS shifting traffic away from an impaired Availability Zone, and back (az-failure)",
    eventPattern: {
      source: ["aws.arc-zonal-shift"],
      "detail-type": ["Autoshift In Progress", "Autoshift Completed"],
    },
  },
  {
    name: "health",
    description: "An AWS Health issue for EC2: a zone or the instances in it may be impaired (az-failure)",
    eventPattern: {
      source: ["aws.health"],
      "detail-type": ["AWS Health Event"],
      detail: { service: ["EC2"], eventTypeCategory: ["issue"] },
    },
  },
  {
    name: "strata",
    description: "Strata's own node and zone events, from the health sweep",
    eventPattern: {
      source: [STRATA_EVENT_SOURCE],
      "detail-type": [
        StrataDetailType.nodeOffline,
        StrataDetailType.nodeOnline,
        StrataDetailType.zoneOffline,
        StrataDetailType.zoneOnline,
      ],
    },
  },
];
