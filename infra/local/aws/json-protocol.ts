import type { AwsHttpReply, AwsHttpRequest, AwsProtocolHandler } from "./http.js";
import { AwsServiceError } from "./service-error.js";

/**
 * The AWS JSON protocols (awsJson1_0: Step Functions; awsJson1_1: EventBridge): every call is a POST
 * to `/` whose `X-Amz-Target: <prefix>.<Operation>` names the operation, with the input as a JSON
 * object. A result is a JSON object; a refusal `{"__type": code, "message": ...}` with a 4xx/5xx
 * status, which the SDK turns into the exception class of that name.
 */
export type JsonOperation = (input: Record<string, unknown>) => Promise<unknown>;

export interface JsonProtocolOptions {
  version: "1.0" | "1.1";
  targetPrefix: string;
  operations: Record<string, JsonOperation>;
}

export function jsonProtocol({ version, targetPrefix, operations }: JsonProtocolOptions): AwsProtocolHandler {
  const contentType = `application/x-amz-json-${version}`;
  const reply = (status: number, body: unknown, requestId: string): AwsHttpReply => ({
    status,
    headers: { "content-type": contentType, "x-amzn-requestid": requestId },
    body: JSON.stringify(toJsonWire(body)),
  });
  return {
    async answer(request: AwsHttpRequest): Promise<AwsHttpReply> {
      const target = String(request.headers["x-amz-target"] ?? "");
      const [prefix, name] = target.split(".");
      const operation =
        prefix === targetPrefix && name && Object.hasOwn(operations, name) ? operations[name] : undefined;
      if (request.method !== "POST" || !operation)
        throw new AwsServiceError(
          "UnknownOperationException",
          `unknown operation ${target || "(no X-Amz-Target)"}`,
        );
      return reply(200, await operation(parseJsonObject(request.body)), request.requestId);
    },
    refusal: (error, requestId) =>
      reply(error.httpStatus, { __type: error.code, message: error.message }, requestId),
  };
}

/** A request body as a JSON object; an empty body is the empty input. */
export function parseJsonObject(body: Buffer): Record<string, unknown> {
  if (body.length === 0) return {};
  let parsed: unknown;
  try {
    parsed = JSON.parse(body.toString("utf8"));
  } catch {
    throw new AwsServiceError("SerializationException", "the request body is not valid JSON");
  }
  if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed))
    throw new AwsServiceError("SerializationException", "the request body is not a JSON object");
  return parsed as Record<string, unknown>;
}

/**
 * A value as the JSON protocols put it on the wire: timestamps are epoch seconds (with fractions),
 * not the ISO strings JSON.stringify would write for a Date; undefined members are left out.
 */
export function toJsonWire(value: unknown): unknown {
  if (value instanceof Date) return value.getTime() / 1000;
  if (Array.isArray(value)) return value.map(toJsonWire);
  if (typeof value === "object" && value !== null)
    return Object.fromEntries(Object.entries(value).map(([key, member]) => [key, toJsonWire(member)]));
  return value;
}
