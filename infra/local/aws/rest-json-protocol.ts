import type { AwsHttpReply, AwsHttpRequest, AwsProtocolHandler } from "./http.js";
import { toJsonWire } from "./json-protocol.js";
import { AwsServiceError } from "./service-error.js";

/**
 * The REST JSON protocol (restJson1: EKS): the operation is the method and the path, its inputs are
 * path segments and query parameters, the result a JSON object. A refusal names its code in the
 * `x-amzn-errortype` header with `{"message": ...}` (and any modelled members) as the body.
 */
export interface RestJsonRoute {
  method: string;
  /** Matched against the decoded path; its groups are the path's labels, in order. */
  path: RegExp;
  answer(labels: string[], query: URLSearchParams): Promise<unknown> | unknown;
}

export function restJsonProtocol(routes: RestJsonRoute[]): AwsProtocolHandler {
  const reply = (status: number, body: unknown, headers: Record<string, string>): AwsHttpReply => ({
    status,
    headers: { "content-type": "application/json", ...headers },
    body: JSON.stringify(toJsonWire(body)),
  });
  return {
    async answer(request: AwsHttpRequest): Promise<AwsHttpReply> {
      for (const route of routes) {
        const match = route.method === request.method ? route.path.exec(request.path) : null;
        if (!match) continue;
        const labels = match.slice(1).map((label) => decodeURIComponent(label));
        return reply(200, await route.answer(labels, request.query), {
          "x-amzn-requestid": request.requestId,
        });
      }
      throw new AwsServiceError(
        "UnknownOperationException",
        `no operation at ${request.method} ${request.path}`,
        404,
      );
    },
    refusal: (error, requestId) =>
      reply(
        error.httpStatus,
        { message: error.message, ...restJsonErrorMembers(error) },
        { "x-amzn-errortype": error.code, "x-amzn-requestid": requestId },
      ),
  };
}

/** A refusal that carries modelled members besides its message (EKS names the cluster and node group). */
export class RestJsonServiceError extends AwsServiceError {
  constructor(
    code: string,
    message: string,
    httpStatus: number,
    readonly members: Record<string, string>,
  ) {
    super(code, message, httpStatus);
  }
}

const restJsonErrorMembers = (error: AwsServiceError) =>
  error instanceof RestJsonServiceError ? error.members : {};
