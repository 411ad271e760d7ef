import { request as httpRequest } from "node:http";
import { Writable } from "node:stream";
import { pino } from "pino";
import { type ControlApi, startControlApi } from "../../agent/api/server.js";
import type { Logger } from "../../agent/log.js";
import type { OperationService } from "../../core/operations.js";
import type { VolumeService } from "../../core/volume-service.js";
import { freshStore, startDynamoDb } from "../core/state-harness.js";
import { startInProcessAgent } from "../support/in-process-agent.js";

/** Every line the API logged during a test, parsed. */
export type LogLine = Record<string, unknown> & { level: number; msg: string };

/** A pino logger that keeps its JSON lines in memory, at debug level so quiet routes show up too. */
export function capturingLogger(): { log: Logger; lines: LogLine[] } {
  const lines: LogLine[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _encoding, done) {
      for (const text of chunk.toString("utf8").split("\n")) {
        if (text.trim() !== "") lines.push(JSON.parse(text) as LogLine);
      }
      done();
    },
  });
  return { log: pino({ level: "debug" }, sink) as unknown as Logger, lines };
}

export interface ApiUnderTest {
  url: string;
  lines: LogLine[];
  close(): Promise<void>;
}

/** The control API over given services, on a free loopback port. */
export async function serveApi(
  service: VolumeService,
  operations?: OperationService,
): Promise<ApiUnderTest & { api: ControlApi }> {
  const { log, lines } = capturingLogger();
  const api = await startControlApi({ service, operations, host: "127.0.0.1", port: 0, log });
  return { api, url: api.url, lines, close: () => api.close() };
}

/**
 * The real volume service on a small file-backed pool in a temporary directory, behind the API: a
 * one-node cluster whose state is in a fresh dynalite table, heartbeating like an agent.
 */
export async function startAgentApi(): Promise<ApiUnderTest> {
  const dynamoDb = await startDynamoDb();
  const store = await freshStore();
  let served: (ApiUnderTest & { api: ControlApi }) | undefined;
  const agent = await startInProcessAgent({
    store,
    nodeId: "node-1",
    zone: "local-a",
    log: capturingLogger().log,
    serveApi: async (volumes) => {
      served = await serveApi(volumes);
      return served;
    },
  });
  return {
    url: served!.url,
    lines: served!.lines,
    close: async () => {
      await agent.close();
      store.close();
      await dynamoDb.close();
    },
  };
}

export interface Answer {
  status: number;
  headers: Headers;
  body: unknown;
}

/** One request; `body` objects are sent as JSON, strings as they are (to send broken JSON). */
export async function call(url: string, method: string, path: string, body?: unknown): Promise<Answer> {
  const init: RequestInit = { method };
  if (body !== undefined) {
    init.body = typeof body === "string" ? body : JSON.stringify(body);
    init.headers = { "content-type": "application/json" };
  }
  const response = await fetch(`${url}${path}`, init);
  const text = await response.text();
  return {
    status: response.status,
    headers: response.headers,
    body: text === "" ? undefined : parseOrText(text),
  };
}

function parseOrText(text: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return text;
  }
}

/** The error body every refusal carries. */
export function errorOf(answer: Answer): { code: string; message: string } {
  return (answer.body as { error: { code: string; message: string } }).error;
}

/**
 * A request written with node:http, for what fetch hides: chunked bodies without a length, and
 * bodies the server stops reading. Resolves with the answer even if the server closed mid-upload.
 */
export function rawRequest(
  url: string,
  options: { method: string; path: string; headers?: Record<string, string | number>; chunks: Buffer[] },
): Promise<{ status: number; headers: Record<string, unknown>; body: unknown }> {
  return new Promise((resolve, reject) => {
    const request = httpRequest(`${url}${options.path}`, {
      method: options.method,
      headers: options.headers,
    });
    request.on("response", (response) => {
      const parts: Buffer[] = [];
      response.on("data", (part: Buffer) => parts.push(part));
      response.on("end", () =>
        resolve({
          status: response.statusCode ?? 0,
          headers: response.headers,
          body: parseOrText(Buffer.concat(parts).toString("utf8")),
        }),
      );
    });
    // The server may answer 413 and close before taking the whole body: that is not a test failure.
    request.on("error", (error: NodeJS.ErrnoException) => {
      if (error.code !== "EPIPE" && error.code !== "ECONNRESET") reject(error);
    });
    for (const chunk of options.chunks) request.write(chunk);
    request.end();
  });
}
