import { textFromEnv } from "../../core/env-settings.js";
import { INSTANCE_ID_VARIABLE } from "./environment.js";

/** The SDK's own variable for where the instance metadata service is; tests point it at a local one. */
export const METADATA_ENDPOINT_VARIABLE = "AWS_EC2_METADATA_SERVICE_ENDPOINT";
const DEFAULT_METADATA_ENDPOINT = "http://169.254.169.254";
/** A token only has to outlive the one read that follows it. */
const TOKEN_TTL_S = 60;
/** The service answers in milliseconds on an instance; off one, there is nothing to wait for. */
const REQUEST_TIMEOUT_MS = 2_000;

/**
 * This instance's id, from the instance metadata service (IMDSv2: a session token first, then the
 * read). The agent reaches it because it runs in the host's network namespace: a pod network adds
 * a hop that the default hop limit of IMDSv2's replies does not allow.
 */
export async function instanceIdFromMetadata(env: NodeJS.ProcessEnv = process.env): Promise<string> {
  const endpoint = textFromEnv(METADATA_ENDPOINT_VARIABLE, DEFAULT_METADATA_ENDPOINT, env).replace(
    /\/+$/,
    "",
  );
  const fail = (why: string) =>
    new Error(
      `cannot read this instance's id from the instance metadata service at ${endpoint} (${why}): ` +
        `run the agent on an EC2 instance in the host's network, or set ${INSTANCE_ID_VARIABLE}`,
    );
  const call = async (path: string, init: RequestInit): Promise<string> => {
    let response: Response;
    try {
      response = await fetch(`${endpoint}${path}`, {
        ...init,
        signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
      });
    } catch (error) {
      throw fail(error instanceof Error ? error.message : String(error));
    }
    if (!response.ok) throw fail(`${init.method ?? "GET"} ${path} answered ${response.status}`);
    return (await response.text()).trim();
  };
  const token = await call("/latest/api/token", {
    method: "PUT",
    headers: { "x-aws-ec2-metadata-token-ttl-seconds": String(TOKEN_TTL_S) },
  });
  const instanceId = await call("/latest/meta-data/instance-id", {
    headers: { "x-aws-ec2-metadata-token": token },
  });
  if (!/^i-[0-9a-f]{8,17}$/.test(instanceId)) throw fail(`"${instanceId}" is not an instance id`);
  return instanceId;
}
