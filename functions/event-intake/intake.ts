import { millisecondsFromEnv } from "../../core/env-settings.js";
import type { NodeRecord } from "../../core/state/records.js";
import type { IntakeEvent } from "./aws-events.js";
import {
  type AzFailureInput,
  compactTime,
  digestOf,
  executionName,
  NodeLossInput,
  type WorkflowStart,
} from "./workflow-starts.js";

/** What intake looks up and does, injected so the decisions are tested without AWS. */
export interface IntakeDependencies {
  nodeByInstance(instanceId: string): Promise<NodeRecord | undefined>;
  node(nodeId: string): Promise<NodeRecord | undefined>;
  /** Zone id (use1-az1) → this account's zone name (us-east-1a). */
  zoneName(zoneId: string): Promise<string>;
  /** Whether placement may use the zone now (true when no workflow marked it). */
  zoneAvailable(zone: string): Promise<boolean>;
  /** Starts the execution; "duplicate" when one of that name exists already. */
  start(start: WorkflowStart): Promise<"started" | "duplicate">;
  /** An execution's status (RUNNING, SUCCEEDED, FAILED, …) and the input it was started with. */
  execution(workflow: WorkflowStart["workflow"], name: string): Promise<{ status: string; input: unknown }>;
  /** Lets Auto Scaling go on terminating the instance a terminate hook holds (CONTINUE). */
  completeLifecycle(lifecycle: LifecycleAction, instanceId: string): Promise<void>;
}

type LifecycleAction = NonNullable<NodeLossInput["lifecycle"]>;

export type IntakeOutcome =
  | {
      action: "started" | "duplicate";
      workflow: WorkflowStart["workflow"];
      execution: string;
      /** What intake did itself for a duplicate (completed a lifecycle action no execution holds). */
      detail?: string;
    }
  | { action: "ignored"; reason: string };

/** EC2 states in which the instance and its agent are gone or going (stopping: its agent stops). */
const LOST_INSTANCE_STATES = new Set(["stopping", "stopped", "shutting-down", "terminated"]);

/**
 * Turns one AWS or Strata event into at most one workflow start, named after the incident so
 * repeats and overlapping sources (the EC2 event, the lifecycle hook, the health sweep's verdict on
 * the same node) start one execution between them: a node's loss is named by its node and the life
 * of its agent (NodeRecord.registeredAt), a zone's by the zone and the source's own identity.
 */
export async function takeIn(event: IntakeEvent, deps: IntakeDependencies): Promise<IntakeOutcome> {
  const start = await decide(event, deps);
  if ("ignored" in start) return { action: "ignored", reason: start.ignored };
  const handled = start.workflow === "az-failure" ? await zoneHandled(start.input, deps) : undefined;
  if (handled !== undefined) return { action: "ignored", reason: handled };
  const { action, name } = await startOrRestart(start, deps);
  const outcome = { action, workflow: start.workflow, execution: name };
  if (action === "started" || start.workflow !== "node-loss") return outcome;
  const released = await releaseUnheldAction(name, start.input, deps);
  return released === undefined ? outcome : { ...outcome, detail: released };
}

/** How an execution ends when it did not do its work: its incident is still open. */
const ENDED_BADLY = new Set(["FAILED", "TIMED_OUT", "ABORTED"]);
/** Restarts of one incident; past them a failing incident is left to an operator (and its alarm). */
export const MAX_RESTARTS = 5;

/**
 * Starts the incident's execution. Its name is taken for good, also by an execution that failed,
 * timed out or was aborted, which would make every later event of the incident a duplicate: then
 * the next of `<name>-r1`, `-r2`, … is started, still named deterministically, so a repeat of this
 * event finds the restart running and starts nothing.
 */
async function startOrRestart(
  start: WorkflowStart,
  deps: IntakeDependencies,
): Promise<{ action: "started" | "duplicate"; name: string }> {
  let name = start.name;
  for (let restart = 1; ; restart++) {
    if ((await deps.start({ ...start, name })) === "started") return { action: "started", name };
    const { status } = await deps.execution(start.workflow, name);
    if (!ENDED_BADLY.has(status) || restart > MAX_RESTARTS) return { action: "duplicate", name };
    name = executionName(start.name, `r${restart}`);
  }
}

/**
 * A terminate lifecycle action whose incident has an execution already (the health sweep or an EC2
 * event started node-loss first, without the action): that execution will never complete it, and
 * the instance would wait out the hook. The node is lost either way, and node-loss finds its drives
 * by tag wherever they are, so the action is completed here; the execution that holds this very
 * action completes it itself.
 */
async function releaseUnheldAction(
  name: string,
  input: NodeLossInput,
  deps: IntakeDependencies,
): Promise<string | undefined> {
  const { lifecycle, instanceId } = input;
  if (lifecycle === null || instanceId === null) return undefined;
  const held = NodeLossInput.shape.lifecycle.safeParse(
    ((await deps.execution("node-loss", name)).input as { lifecycle?: unknown }).lifecycle ?? null,
  );
  if (held.data?.lifecycleActionToken === lifecycle.lifecycleActionToken) return undefined;
  await deps.completeLifecycle(lifecycle, instanceId);
  return `execution ${name} holds no lifecycle action of ${instanceId}: completed it, so the instance may go`;
}

async function decide(
  event: IntakeEvent,
  deps: IntakeDependencies,
): Promise<WorkflowStart | { ignored: string }> {
  switch (event["detail-type"]) {
    case "EC2 Instance State-change Notification": {
      const { "instance-id": instanceId, state } = event.detail;
      if (!LOST_INSTANCE_STATES.has(state))
        return { ignored: `instance ${instanceId} is ${state}: nothing is lost` };
      return instanceLost(deps, instanceId, event.time, `EC2 instance ${instanceId} is ${state}`, null);
    }
    case "EC2 Spot Instance Interruption Warning": {
      const instanceId = event.detail["instance-id"];
      return instanceLost(
        deps,
        instanceId,
        event.time,
        `EC2 Spot interruption: ${instanceId} will be reclaimed`,
        null,
      );
    }
    case "EC2 Instance-terminate Lifecycle Action": {
      const { EC2InstanceId, AutoScalingGroupName, LifecycleHookName, LifecycleActionToken } = event.detail;
      return instanceLost(deps, EC2InstanceId, event.time, `Auto Scaling is terminating ${EC2InstanceId}`, {
        autoScalingGroupName: AutoScalingGroupName,
        lifecycleHookName: LifecycleHookName,
        lifecycleActionToken: LifecycleActionToken,
      });
    }
    case "EC2 Instance-launch Lifecycle Action":
      // A node-loss waiting for a replacement finds the new instance itself (DescribeInstances in its
      // zone and node group); the launch needs no workflow of its own.
      return {
        ignored: `instance ${event.detail.EC2InstanceId} is launching; a node-loss waiting in its zone finds it`,
      };
    case "Autoshift In Progress":
    case "Autoshift Completed": {
      const phase = event["detail-type"] === "Autoshift In Progress" ? "fail" : "restore";
      const zone = await deps.zoneName(event.detail.metadata.awayFrom);
      return zoneStart(
        phase,
        zone,
        `zonal autoshift ${phase === "fail" ? "in progress" : "completed"}`,
        event.time,
        event.id,
      );
    }
    case "AWS Health Event": {
      const { eventArn, communicationId, statusCode, eventTypeCategory } = event.detail;
      if (eventTypeCategory !== "issue") return { ignored: `a Health ${eventTypeCategory}, not an issue` };
      const zone = await impairedZone(event.detail, deps);
      if (zone === undefined)
        return { ignored: `Health event ${eventArn} names no zone holding Strata nodes` };
      const phase = statusCode === "closed" ? "restore" : "fail";
      return zoneStart(
        phase,
        zone,
        `AWS Health: ${eventArn}`,
        event.time,
        digestOf(eventArn, communicationId ?? ""),
      );
    }
    case "Strata Node Offline": {
      const node = await deps.node(event.detail.nodeId);
      if (node === undefined) return { ignored: `node ${event.detail.nodeId} is no longer registered` };
      // The sweep names the life it saw silent; a node registered again since (its agent restarted
      // in time, or a late delivery) is not lost, and must not be fenced.
      const { registeredAt } = event.detail;
      if (registeredAt !== undefined && node.registeredAt !== undefined && node.registeredAt !== registeredAt)
        return {
          ignored: `node ${node.id} registered again at ${node.registeredAt}, after the life the sweep saw lost`,
        };
      const graceUntil = cleanStopGrace(event.time, event.detail.stoppedCleanly);
      return nodeLoss(node, `the health sweep: ${event.detail.reason}`, event.time, null, graceUntil);
    }
    case "Strata Node Online":
      // Its agent resyncs what it missed (the attached nodes' tending); a node-loss waiting for it sees it.
      return {
        ignored: `node ${event.detail.nodeId} is back; its replicas are resynced by their coordinators`,
      };
    case "Strata Zone Offline":
    case "Strata Zone Online": {
      const phase = event["detail-type"] === "Strata Zone Offline" ? "fail" : "restore";
      const reason = `the health sweep: ${event.detail.reason}`;
      // A zone whose offline nodes were all stopped cleanly (a restart of its agents) gets the
      // grace a single node gets before az-failure marks it unavailable and copies anything.
      const graceUntil = phase === "fail" ? cleanStopGrace(event.time, event.detail.stoppedCleanly) : null;
      return zoneStart(phase, event.detail.zone, reason, event.time, minuteOf(event.time), graceUntil);
    }
  }
}

/**
 * The zone a Health issue is about: its availabilityZone when it has one, else the one zone of the
 * Strata nodes among its affected instances (an issue spread over several zones is no zone's).
 */
async function impairedZone(
  detail: Extract<IntakeEvent, { source: "aws.health" }>["detail"],
  deps: IntakeDependencies,
): Promise<string | undefined> {
  if (detail.availabilityZone !== undefined) return detail.availabilityZone;
  const nodes = await Promise.all(
    detail.affectedEntities.map((entity) => deps.nodeByInstance(entity.entityValue)),
  );
  const zones = new Set(nodes.flatMap((node) => (node === undefined ? [] : [node.zone])));
  return zones.size === 1 ? [...zones][0] : undefined;
}

async function instanceLost(
  deps: IntakeDependencies,
  instanceId: string,
  time: string,
  reason: string,
  lifecycle: NodeLossInput["lifecycle"],
): Promise<WorkflowStart | { ignored: string }> {
  const node = await deps.nodeByInstance(instanceId);
  if (node === undefined) return { ignored: `instance ${instanceId} is not a Strata node` };
  return nodeLoss(node, reason, time, lifecycle);
}

/**
 * How long a cleanly stopped node has to serve again before node-loss fences it: a DaemonSet's
 * rolling restart of the agent takes seconds to tens of seconds. STRATA_CLEAN_STOP_GRACE_MS changes it.
 */
export const CLEAN_STOP_GRACE_MS = 60_000;
const cleanStopGraceMs = () => millisecondsFromEnv("STRATA_CLEAN_STOP_GRACE_MS", CLEAN_STOP_GRACE_MS);

/** Until when a workflow waits for what stopped cleanly at `time` to serve again; null: no grace. */
const cleanStopGrace = (time: string, stoppedCleanly: boolean | undefined): string | null =>
  stoppedCleanly === true ? new Date(Date.parse(time) + cleanStopGraceMs()).toISOString() : null;

function nodeLoss(
  node: NodeRecord,
  reason: string,
  detectedAt: string,
  lifecycle: NodeLossInput["lifecycle"],
  graceUntil: string | null = null,
): WorkflowStart {
  return {
    workflow: "node-loss",
    name: executionName("node-loss", node.id, compactTime(node.registeredAt ?? "unregistered")),
    input: {
      nodeId: node.id,
      zone: node.zone,
      instanceId: node.instanceId ?? null,
      reason,
      lifecycle,
      detectedAt,
      graceUntil,
    },
  };
}

/**
 * One zone failure is reported by several sources (the autoshift, a Health event, the health
 * sweep), each with an identity of its own; the zone's mark in the state table says whether an
 * az-failure has taken it on already, so the later reports start nothing.
 */
async function zoneHandled(input: AzFailureInput, deps: IntakeDependencies): Promise<string | undefined> {
  const available = await deps.zoneAvailable(input.zone);
  if (input.phase === "fail" && !available)
    return `zone ${input.zone} is marked unavailable already: an az-failure has taken it on`;
  if (input.phase === "restore" && available)
    return `zone ${input.zone} is available already: nothing to restore`;
  return undefined;
}

function zoneStart(
  phase: AzFailureInput["phase"],
  zone: string,
  reason: string,
  detectedAt: string,
  incident: string,
  graceUntil: string | null = null,
): WorkflowStart {
  return {
    workflow: "az-failure",
    name: executionName("az", phase, zone, incident),
    input: { zone, phase, reason, detectedAt, graceUntil },
  };
}

/**
 * The health sweep's zone verdicts carry no identity of their own; a verdict put twice (a sweep
 * that died between putting and recording it) within one minute is one incident.
 */
const minuteOf = (time: string) => compactTime(time.slice(0, 16));
