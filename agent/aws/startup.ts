import { EC2Client } from "@aws-sdk/client-ec2";
import { textFromEnv } from "../../core/env-settings.js";
import type { Logger } from "../log.js";
import { DEFAULT_DISK_BY_ID_DIR } from "./drive-devices.js";
import { type ClaimedDriveSet, claimDriveSet } from "./drive-set.js";
import { CLUSTER_NAME_VARIABLE, DISK_BY_ID_VARIABLE, INSTANCE_ID_VARIABLE } from "./environment.js";
import { instanceIdFromMetadata } from "./instance-metadata.js";

/** The node an agent started with --ec2-drives serves as, and the instance it found it on. */
export interface Ec2Node extends ClaimedDriveSet {
  instanceId: string;
}

/**
 * An agent on EC2 learns which node it is from its instance's drives: the instance (the
 * STRATA_INSTANCE_ID variable, else the instance metadata), then the drive set attached to it.
 */
export async function ec2Node(
  root: string,
  log: Logger,
  env: NodeJS.ProcessEnv = process.env,
): Promise<Ec2Node> {
  const clusterName = textFromEnv(CLUSTER_NAME_VARIABLE, "", env);
  if (clusterName === "")
    throw new Error(
      `--ec2-drives needs ${CLUSTER_NAME_VARIABLE}: the cluster whose drives this instance holds`,
    );
  const instanceId = textFromEnv(INSTANCE_ID_VARIABLE, "", env) || (await instanceIdFromMetadata(env));
  const ec2 = new EC2Client({});
  try {
    const driveSet = await claimDriveSet({
      ec2,
      clusterName,
      instanceId,
      byIdDir: textFromEnv(DISK_BY_ID_VARIABLE, DEFAULT_DISK_BY_ID_DIR, env),
      root,
      log,
    });
    return { ...driveSet, instanceId };
  } finally {
    ec2.destroy();
  }
}
