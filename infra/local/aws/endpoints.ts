import type { StepFunctionsApi } from "../step-functions/api.js";
import { autoScalingProtocol } from "./auto-scaling-endpoint.js";
import { ec2Protocol } from "./ec2-endpoint.js";
import { eksProtocol } from "./eks-endpoint.js";
import { type EventBusApi, eventBridgeProtocol } from "./eventbridge-endpoint.js";
import { type AwsEndpoint, type AwsProtocolHandler, startAwsEndpoint } from "./http.js";
import { kmsProtocol, LocalKms } from "./kms-endpoint.js";
import type { LocalEc2 } from "./local-ec2.js";
import { stepFunctionsProtocol } from "./step-functions-endpoint.js";

/** What the local cloud's endpoints answer from. */
export interface LocalAwsServices {
  stepFunctions: StepFunctionsApi;
  eventBus: EventBusApi;
  ec2: LocalEc2;
  /** Keys for cloudsnaps protected by KMS; a fresh, empty one unless given. */
  kms?: LocalKms;
}

/**
 * The variable each SDK client reads its endpoint from: `AWS_ENDPOINT_URL_` and the client's
 * service id, upper-cased, its spaces turned into underscores ("Auto Scaling" → AUTO_SCALING).
 */
export const ENDPOINT_VARIABLES = {
  stepFunctions: "AWS_ENDPOINT_URL_SFN",
  eventBridge: "AWS_ENDPOINT_URL_EVENTBRIDGE",
  ec2: "AWS_ENDPOINT_URL_EC2",
  autoScaling: "AWS_ENDPOINT_URL_AUTO_SCALING",
  eks: "AWS_ENDPOINT_URL_EKS",
  kms: "AWS_ENDPOINT_URL_KMS",
} as const;

export type LocalAwsService = keyof typeof ENDPOINT_VARIABLES;

export interface LocalAwsEndpoints {
  /** The endpoint variables to give every process that calls these services. */
  environment: Record<string, string>;
  close(): Promise<void>;
}

/**
 * Starts one endpoint per service, each on its own loopback port (a free one unless the caller
 * fixes it, e.g. to keep the URLs of a restarted cluster). If one cannot start, those already
 * started are closed.
 */
export async function startLocalAwsEndpoints(
  services: LocalAwsServices,
  ports: Partial<Record<LocalAwsService, number>> = {},
): Promise<LocalAwsEndpoints> {
  const protocols: Record<LocalAwsService, AwsProtocolHandler> = {
    stepFunctions: stepFunctionsProtocol(services.stepFunctions),
    eventBridge: eventBridgeProtocol(services.eventBus),
    ec2: ec2Protocol(services.ec2),
    autoScaling: autoScalingProtocol(services.ec2),
    eks: eksProtocol(services.ec2),
    kms: kmsProtocol(services.kms ?? new LocalKms()),
  };
  const started: AwsEndpoint[] = [];
  const close = async () => {
    await Promise.all(started.map((endpoint) => endpoint.close()));
  };
  const environment: Record<string, string> = {};
  try {
    for (const service of Object.keys(protocols) as LocalAwsService[]) {
      const port = ports[service];
      const endpoint = await startAwsEndpoint(protocols[service], port === undefined ? {} : { port });
      started.push(endpoint);
      environment[ENDPOINT_VARIABLES[service]] = endpoint.url;
    }
  } catch (error) {
    await close();
    throw error;
  }
  return { environment, close };
}
