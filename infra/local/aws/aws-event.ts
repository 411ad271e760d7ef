import { randomUUID } from "node:crypto";
import { LOCAL_ACCOUNT_ID, localRegion } from "./identity.js";

/**
 * An event as EventBridge delivers it to rules and targets: the envelope AWS documents for every
 * event, whoever emitted it. The local cloud's own services (EC2 state changes, Auto Scaling
 * lifecycle actions) emit exactly this, so the workflows' rules and input parsers see the same
 * documents locally as in AWS.
 */
export interface AwsEvent<Detail extends object = Record<string, unknown>> {
  version: "0";
  id: string;
  "detail-type": string;
  source: string;
  account: string;
  /** ISO 8601 to the second, as EventBridge writes it (`2026-01-02T03:04:05Z`). */
  time: string;
  region: string;
  resources: string[];
  detail: Detail;
}

export function awsEvent<Detail extends object>(
  source: string,
  detailType: string,
  resources: string[],
  detail: Detail,
  at: Date = new Date(),
): AwsEvent<Detail> {
  return {
    version: "0",
    id: randomUUID(),
    "detail-type": detailType,
    source,
    account: LOCAL_ACCOUNT_ID,
    time: at.toISOString().replace(/\.\d{3}Z$/, "Z"),
    region: localRegion(),
    resources,
    detail,
  };
}
