import type { IncomingMessage } from "node:http";
import type { z } from "zod";
import { ApiFault, badRequest, describeIssues } from "./faults.js";

/** Control requests are a few hundred bytes; anything near this is a mistake or an attack. */
export const MAX_BODY_BYTES = 1024 * 1024;

/**
 * Reads the whole body, refusing more than `limit` bytes without buffering them. An empty body is
 * read as `{}`, so requests whose fields are all optional (or that take none) need no body at all.
 */
export async function readJsonBody(request: IncomingMessage, limit = MAX_BODY_BYTES): Promise<unknown> {
  const declared = Number(request.headers["content-length"]);
  if (declared > limit) throw tooLarge(limit);

  const chunks: Buffer[] = [];
  let received = 0;
  for await (const chunk of request as AsyncIterable<Buffer>) {
    received += chunk.length;
    if (received > limit) throw tooLarge(limit);
    chunks.push(chunk);
  }
  const text = Buffer.concat(chunks).toString("utf8");
  if (text.trim() === "") return {};
  try {
    return JSON.parse(text) as unknown;
  } catch (error) {
    throw badRequest(`request body is not valid JSON: ${(error as Error).message}`);
  }
}

/** Validates a decoded body (or a path parameter) against a schema, answering 400 on the first mismatch. */
export function parseWith<S extends z.ZodType>(
  schema: S,
  value: unknown,
  what = "invalid request",
): z.output<S> {
  const result = schema.safeParse(value);
  if (!result.success) throw badRequest(`${what}: ${describeIssues(result.error.issues)}`);
  return result.data;
}

function tooLarge(limit: number): ApiFault {
  // The unread rest of the body would poison a kept-alive connection: close it after answering.
  return new ApiFault("PAYLOAD_TOO_LARGE", `request body is larger than the ${limit}-byte limit`, {
    connection: "close",
  });
}
