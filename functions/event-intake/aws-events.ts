import { EventBridgeSchema } from "@aws-lambda-powertools/parser/schemas/eventbridge";
import { z } from "zod";
import {
  NodeHealthDetail,
  STRATA_EVENT_SOURCE,
  StrataDetailType,
  ZoneHealthDetail,
} from "../../core/events.js";

/**
 * The events the rules of infra/event-rules.ts deliver to event intake, each as AWS documents its
 * shape (EventBridge envelope, Powertools' schema, with the detail this function reads). Fields it
 * does not read are let through: AWS adds fields to events over time.
 */
const event = <S extends string, T extends string, D extends z.ZodType>(
  source: S,
  detailType: T,
  detail: D,
) => EventBridgeSchema.extend({ source: z.literal(source), "detail-type": z.literal(detailType), detail });

export const InstanceStateChange = event(
  "aws.ec2",
  "EC2 Instance State-change Notification",
  z.object({ "instance-id": z.string().min(1), state: z.string().min(1) }),
);

export const SpotInterruptionWarning = event(
  "aws.ec2",
  "EC2 Spot Instance Interruption Warning",
  z.object({ "instance-id": z.string().min(1), "instance-action": z.string() }),
);

const LifecycleActionDetail = z.object({
  LifecycleActionToken: z.string().min(1),
  AutoScalingGroupName: z.string().min(1),
  LifecycleHookName: z.string().min(1),
  EC2InstanceId: z.string().min(1),
  LifecycleTransition: z.string(),
});

export const TerminateLifecycleAction = event(
  "aws.autoscaling",
  "EC2 Instance-terminate Lifecycle Action",
  LifecycleActionDetail,
);

export const LaunchLifecycleAction = event(
  "aws.autoscaling",
  "EC2 Instance-launch Lifecycle Action",
  LifecycleActionDetail,
);

/** Zonal autoshift names the zone by its id (use1-az1), the same in every account. */
const AutoshiftDetail = z.object({ metadata: z.object({ awayFrom: z.string().min(1) }) });
export const AutoshiftInProgress = event("aws.arc-zonal-shift", "Autoshift In Progress", AutoshiftDetail);
export const AutoshiftCompleted = event("aws.arc-zonal-shift", "Autoshift Completed", AutoshiftDetail);

export const HealthEvent = event(
  "aws.health",
  "AWS Health Event",
  z.object({
    eventArn: z.string().min(1),
    service: z.string(),
    eventTypeCategory: z.string(),
    /** Each update of one Health event is a new communication. */
    communicationId: z.string().optional(),
    statusCode: z.string().optional(),
    /** Set by the Health API on zonal events; EventBridge's samples leave it out. */
    availabilityZone: z.string().optional(),
    affectedEntities: z.array(z.object({ entityValue: z.string() })).default([]),
  }),
);

export const StrataNodeOffline = event(STRATA_EVENT_SOURCE, StrataDetailType.nodeOffline, NodeHealthDetail);
export const StrataNodeOnline = event(STRATA_EVENT_SOURCE, StrataDetailType.nodeOnline, NodeHealthDetail);
export const StrataZoneOffline = event(STRATA_EVENT_SOURCE, StrataDetailType.zoneOffline, ZoneHealthDetail);
export const StrataZoneOnline = event(STRATA_EVENT_SOURCE, StrataDetailType.zoneOnline, ZoneHealthDetail);

export const IntakeEvent = z.union([
  InstanceStateChange,
  SpotInterruptionWarning,
  TerminateLifecycleAction,
  LaunchLifecycleAction,
  AutoshiftInProgress,
  AutoshiftCompleted,
  HealthEvent,
  StrataNodeOffline,
  StrataNodeOnline,
  StrataZoneOffline,
  StrataZoneOnline,
]);
export type IntakeEvent = z.infer<typeof IntakeEvent>;
