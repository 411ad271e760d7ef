import { join } from "node:path";
import { z } from "zod";

/**
 * The supervisor's control channel: HTTP/1.1 with JSON bodies on a Unix socket in the cluster
 * directory. A socket file rather than a TCP port: there is no port to pick or to publish, only the
 * directory's owner can connect (file permissions are the access control), and its presence next
 * to cluster.json says which supervisor it belongs to.
 *
 *   GET  /v1/nodes                 → { nodes: SupervisedNodeView[] }
 *   POST /v1/nodes/:id/stop {kill} → SupervisedNodeView once the agent is gone (kill: SIGKILL, a crash)
 *   POST /v1/nodes/:id/start       → SupervisedNodeView once the agent serves and has registered
 *   POST /v1/nodes/:id/kill {replace} → SupervisedNodeView once the node's instance is lost (agent
 *                                    killed, instance terminated); with replace, a new instance
 *                                    has started in its zone
 *   POST /v1/zones/:zone/fail      → ZoneView once every agent of the zone is unreachable
 *   POST /v1/zones/:zone/restore   → ZoneView once every agent of the zone serves again
 *
 * Errors answer { error: { code, message } } with the codes of core/errors.ts, like the agent's
 * control API.
 */
export const CONTROL_SOCKET = "supervisor.sock";
export const controlSocketPath = (dir: string) => join(dir, CONTROL_SOCKET);

export const SupervisedNodeView = z.object({
  id: z.string(),
  zone: z.string(),
  /** running, starting, restarting (after a crash) or stopped (by the operator). */
  process: z.enum(["running", "starting", "restarting", "stopped"]),
  pid: z.number().int().nullable(),
  apiUrl: z.string(),
  dataDir: z.string(),
  /** The local cloud's instance holding the node's drive set, if one does. */
  instanceId: z.string().nullable(),
});
export type SupervisedNodeView = z.infer<typeof SupervisedNodeView>;

export const SupervisedNodeList = z.object({ nodes: z.array(SupervisedNodeView) });
export const StopNodeRequest = z.strictObject({ kill: z.boolean().default(false) });
export const StartNodeRequest = z.strictObject({});
export const KillNodeRequest = z.strictObject({ replace: z.boolean().default(false) });

export const ZoneView = z.object({ zone: z.string(), nodes: z.array(SupervisedNodeView) });
export type ZoneView = z.infer<typeof ZoneView>;
