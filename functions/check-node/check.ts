import { z } from "zod";
import { whyDown, zoneVerdict } from "../../core/liveness.js";
import { offlineSince } from "../../core/state/health.js";
import type { ClusterAccess } from "../shared/cluster.js";

const ReturnedCheck = z.object({
  purpose: z.literal("returned"),
  nodeId: z.string().min(1),
  /** The instance the node's drives were moved to: its agent must be the one serving. */
  instanceId: z.string().min(1),
  /** When the drives were moved (kept for the history; the instance id is what proves the return). */
  since: z.iso.datetime(),
  /** How long to wait for it before re-replicating instead. */
  deadline: z.iso.datetime(),
});

/** During a cleanly stopped node's grace: is it still the silent life node-loss was started for? */
const StillLostCheck = z.object({
  purpose: z.literal("still-lost"),
  nodeId: z.string().min(1),
  graceUntil: z.iso.datetime(),
});

/** During a zone's grace (its offline nodes all stopped cleanly): is the zone still offline? */
const ZoneStillLostCheck = z.object({
  purpose: z.literal("zone-still-lost"),
  zone: z.string().min(1),
  graceUntil: z.iso.datetime(),
  /** When the zone was found offline: the nodes it failed with are the ones waited for. */
  detectedAt: z.iso.datetime(),
});

export const CheckNodeInput = z.discriminatedUnion("purpose", [
  ReturnedCheck,
  StillLostCheck,
  ZoneStillLostCheck,
]);
export type CheckNodeInput = z.infer<typeof CheckNodeInput>;

export interface NodeCheck {
  /**
   * back: serving (from the new instance, or again after a clean stop); waiting: not yet;
   * gave-up: the deadline or the grace passed, the node is lost.
   */
  status: "back" | "waiting" | "gave-up";
  detail: string;
}

/** One look, for node-loss's and az-failure's Wait loops, at whether the node (or zone) serves again. */
export function checkNode(input: CheckNodeInput, cluster: ClusterAccess): Promise<NodeCheck> {
  switch (input.purpose) {
    case "returned":
      return checkReturned(input, cluster);
    case "still-lost":
      return checkStillLost(input, cluster);
    case "zone-still-lost":
      return checkZoneStillLost(input, cluster);
  }
}

/** Back when it heartbeats again (whichever life: a restarted agent registers anew); lost after the grace. */
async function checkStillLost(
  input: z.infer<typeof StillLostCheck>,
  cluster: ClusterAccess,
): Promise<NodeCheck> {
  const { down, now } = await lookUp(input.nodeId, cluster);
  if (down === undefined) return { status: "back", detail: `${input.nodeId} serves again` };
  return graceVerdict(`${input.nodeId} is still ${down}`, input.graceUntil, now);
}

/** Back when the health sweep's majority rule no longer calls the zone offline; lost after the grace. */
async function checkZoneStillLost(
  input: z.infer<typeof ZoneStillLostCheck>,
  cluster: ClusterAccess,
): Promise<NodeCheck> {
  const liveness = cluster.liveness();
  const [nodes, verdicts] = await Promise.all([cluster.store.nodes.list(), cluster.store.health.list()]);
  const members = nodes.filter((node) => node.zone === input.zone);
  const verdict = zoneVerdict(members, liveness, offlineSince(verdicts), new Date(input.detectedAt));
  if (!verdict.offline) return { status: "back", detail: `zone ${input.zone} serves again` };
  const down = verdict.down.map(({ node, why }) => `${node.id} (${why})`).join(", ");
  return graceVerdict(`zone ${input.zone} is still offline: ${down}`, input.graceUntil, liveness.now);
}

/** Not back: waiting until `until`, given up after it. */
const graceVerdict = (detail: string, until: string, now: Date): NodeCheck =>
  now.getTime() > Date.parse(until) ? { status: "gave-up", detail } : { status: "waiting", detail };

/** The node's record and why it is down (undefined: it serves), at the liveness clock's now. */
async function lookUp(nodeId: string, cluster: ClusterAccess) {
  const liveness = cluster.liveness();
  const node = (await cluster.store.nodes.list()).find((candidate) => candidate.id === nodeId);
  const down = node === undefined ? "not registered" : whyDown(node, liveness);
  return { node, down, now: liveness.now };
}

/** Back when its record names the instance its drives moved to, with a fresh heartbeat. */
async function checkReturned(
  input: z.infer<typeof ReturnedCheck>,
  cluster: ClusterAccess,
): Promise<NodeCheck> {
  const { node, down, now } = await lookUp(input.nodeId, cluster);
  // Only a registration writes instanceId, so the new instance's id in the record is the node's new
  // life (no clock comparison: the agent's clock and the workflow's need not agree).
  if (node?.instanceId === input.instanceId && down === undefined) {
    return { status: "back", detail: `${input.nodeId} serves from ${input.instanceId}` };
  }
  const waiting = `${input.nodeId} is not serving from ${input.instanceId} yet (${down ?? `on ${node?.instanceId ?? "no instance"}`})`;
  return graceVerdict(waiting, input.deadline, now);
}
