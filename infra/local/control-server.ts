import { rm } from "node:fs/promises";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import { z } from "zod";
import { errorReply, invalid, StrataError } from "../../core/errors.js";
import {
  controlSocketPath,
  KillNodeRequest,
  StartNodeRequest,
  StopNodeRequest,
  type SupervisedNodeView,
  type ZoneView,
} from "./control-protocol.js";

/** What the control channel can ask of the supervisor. */
export interface NodeControl {
  list(): SupervisedNodeView[];
  stop(nodeId: string, kill: boolean): Promise<SupervisedNodeView>;
  start(nodeId: string): Promise<SupervisedNodeView>;
  /** The node's instance is lost; with `replace`, its node group starts another in its zone. */
  kill(nodeId: string, replace: boolean): Promise<SupervisedNodeView>;
  failZone(zone: string): Promise<ZoneView>;
  restoreZone(zone: string): Promise<ZoneView>;
}

export interface ControlServer {
  close(): Promise<void>;
}

const NODE_ACTION = /^\/v1\/nodes\/([^/]+)\/(stop|start|kill)$/;
const ZONE_ACTION = /^\/v1\/zones\/([^/]+)\/(fail|restore)$/;
/** Bodies are a few bytes of JSON; anything bigger is not from the CLI. */
const MAX_BODY_BYTES = 4096;

/**
 * Serves the control channel (see control-protocol.ts) on <dir>/supervisor.sock. The socket file of
 * a supervisor that was killed is left behind; the caller has already claimed the directory, so it
 * is removed before listening.
 */
export async function startControlServer(dir: string, control: NodeControl): Promise<ControlServer> {
  const path = controlSocketPath(dir);
  await rm(path, { force: true });
  const server = createServer((request, response) => {
    handle(control, request).then(
      ({ status, body }) => answer(response, status, body),
      (error: unknown) => {
        const refusal =
          error instanceof StrataError ? error : new StrataError("INTERNAL", (error as Error).message);
        answer(response, refusal.httpStatus, errorReply(refusal));
      },
    );
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(path, () => {
      server.off("error", reject);
      resolve();
    });
  });
  return {
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

async function handle(
  control: NodeControl,
  request: IncomingMessage,
): Promise<{ status: number; body: unknown }> {
  const url = new URL(request.url ?? "/", "http://supervisor");
  if (request.method === "GET" && url.pathname === "/v1/nodes")
    return { status: 200, body: { nodes: control.list() } };
  const action = NODE_ACTION.exec(url.pathname);
  if (request.method === "POST" && action) {
    const nodeId = decodeURIComponent(action[1]!);
    const body = await readJson(request);
    if (action[2] === "start") {
      parseBody(StartNodeRequest, body);
      return { status: 200, body: await control.start(nodeId) };
    }
    if (action[2] === "kill") {
      return { status: 200, body: await control.kill(nodeId, parseBody(KillNodeRequest, body).replace) };
    }
    return { status: 200, body: await control.stop(nodeId, parseBody(StopNodeRequest, body).kill) };
  }
  const zoneAction = ZONE_ACTION.exec(url.pathname);
  if (request.method === "POST" && zoneAction) {
    const zone = decodeURIComponent(zoneAction[1]!);
    parseBody(StartNodeRequest, await readJson(request));
    return {
      status: 200,
      body: zoneAction[2] === "fail" ? await control.failZone(zone) : await control.restoreZone(zone),
    };
  }
  throw new StrataError("NOT_FOUND", `no such supervisor request: ${request.method} ${url.pathname}`);
}

function parseBody<S extends z.ZodType>(schema: S, body: unknown): z.output<S> {
  const parsed = schema.safeParse(body);
  if (!parsed.success) throw invalid(z.prettifyError(parsed.error));
  return parsed.data;
}

async function readJson(request: IncomingMessage): Promise<unknown> {
  let text = "";
  for await (const chunk of request) {
    text += String(chunk);
    if (text.length > MAX_BODY_BYTES) throw new StrataError("PAYLOAD_TOO_LARGE", "request body too large");
  }
  if (text === "") return {};
  try {
    return JSON.parse(text) as unknown;
  } catch {
    throw invalid("request body is not JSON");
  }
}

function answer(response: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  response.writeHead(status, {
    "content-type": "application/json",
    "content-length": Buffer.byteLength(text),
  });
  response.end(text);
}
