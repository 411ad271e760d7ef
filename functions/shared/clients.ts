import { AutoScalingClient } from "@aws-sdk/client-auto-scaling";
import { EC2Client } from "@aws-sdk/client-ec2";
import { EKSClient } from "@aws-sdk/client-eks";
import { EventBridgeClient } from "@aws-sdk/client-eventbridge";
import { SFNClient } from "@aws-sdk/client-sfn";
import { StateStore } from "../../core/state/store.js";
import { type FunctionSettings, functionSettings } from "./settings.js";

/**
 * The AWS clients of a Lambda, made on first use and kept for the life of the execution
 * environment (connections are reused across invocations). Endpoints, region and credentials come
 * from the environment only (AWS_ENDPOINT_URL_<SERVICE>), so the same code reaches AWS or the local
 * cloud.
 */
export interface AwsClients {
  settings: FunctionSettings;
  store: StateStore;
  sfn: SFNClient;
  events: EventBridgeClient;
  ec2: EC2Client;
  eks: EKSClient;
  autoScaling: AutoScalingClient;
}

let made: AwsClients | undefined;

export function awsClients(): AwsClients {
  if (made !== undefined) return made;
  const settings = functionSettings();
  made = {
    settings,
    store: new StateStore({ tableName: settings.STRATA_STATE_TABLE }),
    sfn: new SFNClient({}),
    events: new EventBridgeClient({}),
    ec2: new EC2Client({}),
    eks: new EKSClient({}),
    autoScaling: new AutoScalingClient({}),
  };
  return made;
}
