import { request } from "node:http";
import type { z } from "zod";
import { parseJson } from "../core/control-client.js";
import { errorFromReply, StrataError } from "../core/errors.js";
import {
  controlSocketPath,
  SupervisedNodeView as NodeView,
  SupervisedNodeList,
  type SupervisedNodeView,
  ZoneView,
} from "../infra/local/control-protocol.js";

/** The CLI's side of the supervisor's control channel (infra/local/control-protocol.ts). */
export class SupervisorClient {
  private readonly socketPath: string;

  constructor(private readonly dir: string) {
    this.socketPath = controlSocketPath(dir);
  }

  async listNodes(): Promise<SupervisedNodeView[]> {
    return (await this.call("GET", "/v1/nodes", undefined, SupervisedNodeList)).nodes;
  }

  stopNode(nodeId: string, kill: boolean): Promise<SupervisedNodeView> {
    return this.call("POST", `${nodePath(nodeId)}/stop`, { kill }, NodeView);
  }

  startNode(nodeId: string): Promise<SupervisedNodeView> {
    return this.call("POST", `${nodePath(nodeId)}/start`, {}, NodeView);
  }

  killNode(nodeId: string, replace: boolean): Promise<SupervisedNodeView> {
    return this.call("POST", `${nodePath(nodeId)}/kill`, { replace }, NodeView);
  }

  changeZone(zone: string, change: "fail" | "restore"): Promise<ZoneView> {
    return this.call("POST", `/v1/zones/${encodeURIComponent(zone)}/${change}`, {}, ZoneView);
  }

  private async call<S extends z.ZodType>(
    method: "GET" | "POST",
    path: string,
    body: unknown,
    schema: S,
  ): Promise<z.output<S>> {
    const { status, text } = await this.send(method, path, body);
    const json = parseJson(text);
    if (status !== 200)
      throw errorFromReply(json, `the supervisor answered ${method} ${path} with HTTP ${status}`);
    const parsed = schema.safeParse(json);
    if (!parsed.success) {
      throw new StrataError("INTERNAL", `the supervisor sent an unexpected answer to ${method} ${path}`);
    }
    return parsed.data;
  }

  /** No timeout: stopping a node waits for its volumes to flush, starting one for it to register. */
  private send(method: string, path: string, body: unknown): Promise<{ status: number; text: string }> {
    const payload = body === undefined ? undefined : JSON.stringify(body);
    return new Promise((resolve, reject) => {
      const outgoing = request(
        {
          socketPath: this.socketPath,
          path,
          method,
          headers: payload === undefined ? {} : { "content-type": "application/json" },
        },
        (response) => {
          let text = "";
          response.setEncoding("utf8");
          response.on("data", (chunk: string) => {
            text += chunk;
          });
          response.on("end", () => resolve({ status: response.statusCode ?? 0, text }));
          response.on("error", reject);
        },
      );
      outgoing.on("error", () =>
        reject(
          new StrataError(
            "UNAVAILABLE",
            `the supervisor of the cluster in ${this.dir} does not answer on ${this.socketPath}: ` +
              "is its `strata cluster up` still running?",
          ),
        ),
      );
      outgoing.end(payload);
    });
  }
}

const nodePath = (nodeId: string) => `/v1/nodes/${encodeURIComponent(nodeId)}`;
