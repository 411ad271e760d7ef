import { randomUUID } from "node:crypto";
import { createServer, type IncomingHttpHeaders, type IncomingMessage } from "node:http";
import type { AddressInfo } from "node:net";
import { AwsServiceError } from "./service-error.js";

/**
 * The shared HTTP layer of the local cloud's AWS-compatible endpoints. Each service listens on its
 * own loopback port, so each SDK client is pointed at it by its own `AWS_ENDPOINT_URL_<SERVICE>`
 * variable and no endpoint has to guess which service a request was meant for.
 *
 * Request signatures are not checked: the endpoints listen on 127.0.0.1 only and serve the one
 * machine's local cluster, where the SDK signs with placeholder credentials anyway.
 */

/** One request as a protocol sees it: the body is read whole, within the endpoint's size limit. */
export interface AwsHttpRequest {
  method: string;
  path: string;
  query: URLSearchParams;
  headers: IncomingHttpHeaders;
  body: Buffer;
  /** The id the reply carries in the protocol's own place (header, XML element). */
  requestId: string;
}

export interface AwsHttpReply {
  status: number;
  headers: Record<string, string>;
  body: string;
}

/** One service's wire protocol: how it answers a request and how it states a refusal. */
export interface AwsProtocolHandler {
  answer(request: AwsHttpRequest): Promise<AwsHttpReply>;
  refusal(error: AwsServiceError, requestId: string): AwsHttpReply;
}

export interface AwsEndpoint {
  /** `http://127.0.0.1:<port>`, what the SDK's endpoint variable is set to. */
  url: string;
  close(): Promise<void>;
}

export interface AwsEndpointOptions {
  /** 0 (the default) lets the system pick a free port. */
  port?: number;
  /** The largest body read; larger ones are refused before they are parsed. */
  maxBodyBytes?: number;
}

/** Large enough for EventBridge's 256 KB PutEvents limit to be checked by EventBridge's own rule. */
const DEFAULT_MAX_BODY_BYTES = 1024 * 1024;

export async function startAwsEndpoint(
  handler: AwsProtocolHandler,
  options: AwsEndpointOptions = {},
): Promise<AwsEndpoint> {
  const maxBodyBytes = options.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES;
  const server = createServer((incoming, response) => {
    const requestId = randomUUID();
    reply(handler, incoming, requestId, maxBodyBytes).then(({ status, headers, body }) => {
      response.writeHead(status, { ...headers, "content-length": String(Buffer.byteLength(body)) });
      response.end(body);
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(options.port ?? 0, "127.0.0.1", () => {
      server.off("error", reject);
      resolve();
    });
  });
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

/** Never rejects: whatever goes wrong becomes a refusal in the service's own error shape. */
async function reply(
  handler: AwsProtocolHandler,
  incoming: IncomingMessage,
  requestId: string,
  maxBodyBytes: number,
): Promise<AwsHttpReply> {
  try {
    const url = new URL(incoming.url ?? "/", "http://127.0.0.1");
    const body = await readBody(incoming, maxBodyBytes);
    return await handler.answer({
      method: incoming.method ?? "GET",
      path: url.pathname,
      query: url.searchParams,
      headers: incoming.headers,
      body,
      requestId,
    });
  } catch (error) {
    const refusal =
      error instanceof AwsServiceError
        ? error
        : new AwsServiceError("InternalFailure", (error as Error).message, 500);
    return handler.refusal(refusal, requestId);
  }
}

async function readBody(incoming: IncomingMessage, maxBodyBytes: number): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let length = 0;
  for await (const chunk of incoming) {
    const bytes = chunk as Buffer;
    length += bytes.length;
    if (length > maxBodyBytes) {
      incoming.resume();
      throw new AwsServiceError("RequestEntityTooLarge", `request body is over ${maxBodyBytes} bytes`, 413);
    }
    chunks.push(bytes);
  }
  return Buffer.concat(chunks);
}
