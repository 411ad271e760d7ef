import { createHash } from "node:crypto";
import { z } from "zod";

/** What node-loss is given: the node, why it is lost, and the lifecycle action to complete, if any. */
export const NodeLossInput = z.object({
  nodeId: z.string().min(1),
  zone: z.string().min(1),
  instanceId: z.string().nullable(),
  reason: z.string(),
  /** Present when Auto Scaling holds the instance in Terminating:Wait: a replacement is coming. */
  lifecycle: z
    .object({
      autoScalingGroupName: z.string(),
      lifecycleHookName: z.string(),
      lifecycleActionToken: z.string(),
    })
    .nullable(),
  detectedAt: z.iso.datetime(),
  /**
   * For a node stopped cleanly: until when node-loss waits for the same node to serve again before
   * it fences anything (a rolling restart must not cost a re-replication); null: fence at once.
   */
  graceUntil: z.iso.datetime().nullable(),
});
export type NodeLossInput = z.infer<typeof NodeLossInput>;

/** What az-failure is given: the zone, and whether it failed or came back. */
export const AzFailureInput = z.object({
  zone: z.string().min(1),
  phase: z.enum(["fail", "restore"]),
  reason: z.string(),
  detectedAt: z.iso.datetime(),
  /** For a zone whose offline nodes all stopped cleanly: as NodeLossInput's, before marking the zone. */
  graceUntil: z.iso.datetime().nullable(),
});
export type AzFailureInput = z.infer<typeof AzFailureInput>;

export type WorkflowStart =
  | { workflow: "node-loss"; name: string; input: NodeLossInput }
  | { workflow: "az-failure"; name: string; input: AzFailureInput };

/** Step Functions execution names: 1-80 of letters, digits, '-' and '_'. */
const MAX_NAME_LENGTH = 80;

/**
 * An execution name from its parts, deterministic so that a second event about the same incident
 * starts nothing new (StartExecution refuses a name already used). A long one keeps a readable head
 * and a hash of the whole.
 */
export function executionName(...parts: string[]): string {
  const name = parts.join("-").replace(/[^A-Za-z0-9_-]/g, "-");
  if (name.length <= MAX_NAME_LENGTH) return name;
  const digest = createHash("sha256").update(name).digest("hex").slice(0, 12);
  return `${name.slice(0, MAX_NAME_LENGTH - digest.length - 1)}-${digest}`;
}

/** "2026-12-03T06:55:12.123Z" → "20261203T065512123Z": a node's life, short enough for a name. */
export const compactTime = (iso: string) => iso.replace(/[-:.]/g, "");

/** A short, stable digest of an event's identity (a Health event's ARN and communication). */
export const digestOf = (...parts: string[]) =>
  createHash("sha256").update(parts.join("\n")).digest("hex").slice(0, 16);
