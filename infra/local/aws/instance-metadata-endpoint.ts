import { randomBytes } from "node:crypto";
import { type AwsEndpoint, type AwsHttpReply, type AwsHttpRequest, startAwsEndpoint } from "./http.js";
import type { LocalEc2 } from "./local-ec2.js";
import type { AwsServiceError } from "./service-error.js";

/** IMDSv2's limits on a session token's life, in seconds. */
const MAX_TOKEN_TTL_S = 21_600;
const TOKEN_TTL_HEADER = "x-aws-ec2-metadata-token-ttl-seconds";
const TOKEN_HEADER = "x-aws-ec2-metadata-token";

/**
 * One local instance's metadata service, as IMDSv2 serves it on 169.254.169.254 inside an
 * instance: a session token first (PUT), then the instance's id and zone with that token. The
 * address is the instance's own, so each local instance gets an endpoint of its own; a process is
 * pointed at it by AWS_EC2_METADATA_SERVICE_ENDPOINT, the SDK's variable for the same thing.
 */
export function startInstanceMetadata(world: LocalEc2, instanceId: string): Promise<AwsEndpoint> {
  const tokens = new Map<string, number>();
  const text = (status: number, body: string): AwsHttpReply => ({
    status,
    headers: { "content-type": "text/plain" },
    body,
  });
  const metadata: Record<string, () => string> = {
    "/latest/meta-data/instance-id": () => instanceId,
    "/latest/meta-data/placement/availability-zone": () => world.instance(instanceId).zone,
  };
  return startAwsEndpoint({
    async answer(request: AwsHttpRequest) {
      if (request.path === "/latest/api/token") {
        if (request.method !== "PUT") return text(405, "");
        const ttl = Number(request.headers[TOKEN_TTL_HEADER]);
        if (!Number.isInteger(ttl) || ttl < 1 || ttl > MAX_TOKEN_TTL_S) return text(400, "");
        const token = randomBytes(24).toString("base64url");
        tokens.set(token, Date.now() + ttl * 1000);
        return text(200, token);
      }
      const expires = tokens.get(String(request.headers[TOKEN_HEADER] ?? ""));
      if (expires === undefined || expires < Date.now()) return text(401, "");
      const read = metadata[request.path];
      return read === undefined ? text(404, "") : text(200, read());
    },
    refusal: (error: AwsServiceError) => text(error.httpStatus, error.message),
  });
}
