import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import type { CloudsnapService } from "../../core/cloudsnaps.js";
import { errorReply } from "../../core/errors.js";
import type { OperationService } from "../../core/operations.js";
import type { PolicyService } from "../../core/schedule-policies.js";
import type { VolumeService } from "../../core/volume-service.js";
import type { Logger } from "../log.js";
import { toFailure } from "./faults.js";
import { readJsonBody } from "./request-body.js";
import { matchRoute, type Reply, type Route } from "./router.js";
import { controlRoutes } from "./routes.js";

export interface ControlApiOptions {
  service: VolumeService;
  /** Served under /v1/operations when given. */
  operations?: OperationService;
  /** Served under /v1/cloudsnaps (and a volume's cloudsnaps) when given. */
  cloudsnaps?: CloudsnapService;
  /** Served under /v1/policies (and a volume's policy) when given. */
  policies?: PolicyService;
  host: string;
  /** 0 picks a free port; the chosen one is in the returned url. */
  port: number;
  log: Logger;
}

export interface ControlApi {
  /** e.g. http://127.0.0.1:9410, with the port actually bound. */
  readonly url: string;
  /** Stops accepting connections and resolves once in-flight requests have been answered. */
  close(): Promise<void>;
}

/** Serves the node agent's control API (JSON over plain HTTP) until closed. */
export async function startControlApi(options: ControlApiOptions): Promise<ControlApi> {
  const routes = controlRoutes(options.service, options.operations, options.cloudsnaps, options.policies);
  const log = options.log.child({ component: "control-api" });
  const lifecycle = { closing: false };
  const server = createServer((request, response) => {
    // While closing, answer what is in flight but let no connection stay open for more.
    if (lifecycle.closing) response.setHeader("connection", "close");
    void serve(routes, log, request, response);
  });

  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(options.port, options.host, () => {
      server.off("error", reject);
      resolve();
    });
  });
  const { address, port } = server.address() as AddressInfo;
  const url = `http://${address.includes(":") ? `[${address}]` : address}:${port}`;
  log.info({ url }, "control API listening");

  return {
    url,
    close: () =>
      new Promise<void>((resolve, reject) => {
        lifecycle.closing = true;
        server.close((error) => (error ? reject(error) : resolve()));
        // Kept-alive connections with no request in flight would hold close() open forever.
        server.closeIdleConnections();
      }),
  };
}

async function serve(
  routes: readonly Route[],
  log: Logger,
  request: IncomingMessage,
  response: ServerResponse,
) {
  const startedAt = process.hrtime.bigint();
  const method = request.method ?? "GET";
  const url = new URL(request.url ?? "/", "http://agent");
  const path = url.pathname;
  let quiet = false;
  let reply: Reply;
  try {
    const { route, params } = matchRoute(routes, method, path);
    quiet = route.quiet === true;
    reply = await route.handle({ params, query: url.searchParams, body: () => readJsonBody(request) });
  } catch (error) {
    const failure = toFailure(error);
    if (failure.unexpected) log.error({ err: error, method, path }, "control request failed unexpectedly");
    for (const [name, value] of Object.entries(failure.headers)) response.setHeader(name, value);
    reply = { status: failure.error.httpStatus, body: errorReply(failure.error) };
  }

  send(response, reply);
  const durationMs = Number(process.hrtime.bigint() - startedAt) / 1e6;
  const line = { method, path, status: reply.status, durationMs: Math.round(durationMs * 10) / 10 };
  if (quiet) log.debug(line, "control request");
  else log.info(line, "control request");
}

function send(response: ServerResponse, reply: Reply): void {
  if (reply.raw) {
    response.writeHead(reply.status, { "content-type": reply.raw.contentType });
    response.end(reply.raw.text);
  } else if (reply.status === 204 || reply.body === undefined) {
    response.writeHead(reply.status);
    response.end();
  } else {
    const text = `${JSON.stringify(reply.body)}\n`;
    response.writeHead(reply.status, {
      "content-type": "application/json; charset=utf-8",
      "content-length": Buffer.byteLength(text),
    });
    response.end(text);
  }
}
