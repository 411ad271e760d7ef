import { EC2Client } from "@aws-sdk/client-ec2";
import { textFromEnv } from "../../core/env-settings.js";
import type { LeaseStore } from "../../core/state/leases.js";
import {
  claimReplacement,
  ReplacementClaimedError,
  replacementHolder,
} from "../../core/state/replacement-claims.js";
import { StateStore } from "../../core/state/store.js";
import type { Logger } from "../log.js";
import { DEFAULT_DISK_BY_ID_DIR } from "./drive-devices.js";
import { type ClaimedDriveSet, claimDriveSet } from "./drive-set.js";
import { CLUSTER_NAME_VARIABLE, DISK_BY_ID_VARIABLE, INSTANCE_ID_VARIABLE } from "./environment.js";
import { instanceIdFromMetadata } from "./instance-metadata.js";

/** The node an agent started with --ec2-drives serves as, and the instance it found it on. */
export interface Ec2Node extends ClaimedDriveSet {
  instanceId: string;
}

export interface Ec2NodeOptions {
  /** The agent's --data-dir. */
  root: string;
  /** The cluster's state table, where lost nodes' recoveries claim their replacement instances. */
  stateTable: string | null;
  log: Logger;
}

/**
 * An agent on EC2 learns which node it is from its instance's drives: the instance (the
 * STRATA_INSTANCE_ID variable, else the instance metadata), then the drive set attached to it.
 */
export async function ec2Node(
  options: Ec2NodeOptions,
  env: NodeJS.ProcessEnv = process.env,
): Promise<Ec2Node> {
  const clusterName = textFromEnv(CLUSTER_NAME_VARIABLE, "", env);
  if (clusterName === "")
    throw new Error(
      `--ec2-drives needs ${CLUSTER_NAME_VARIABLE}: the cluster whose drives this instance holds`,
    );
  const instanceId = textFromEnv(INSTANCE_ID_VARIABLE, "", env) || (await instanceIdFromMetadata(env));
  const ec2 = new EC2Client({});
  const store = options.stateTable === null ? undefined : new StateStore({ tableName: options.stateTable });
  try {
    const driveSet = await claimDriveSet({
      ec2,
      clusterName,
      instanceId,
      byIdDir: textFromEnv(DISK_BY_ID_VARIABLE, DEFAULT_DISK_BY_ID_DIR, env),
      root: options.root,
      log: options.log,
      ...(store === undefined
        ? {}
        : { takeInstance: (nodeId) => takeInstance(store.leases, instanceId, nodeId) }),
    });
    // Every later line of the agent's log names the node, as STRATA_NODE_ID makes it do locally.
    options.log.setBindings({ node: driveSet.nodeId });
    return { ...driveSet, instanceId };
  } finally {
    ec2.destroy();
    store?.close();
  }
}

/**
 * Claims the instance for a new node the way a lost node's recovery claims its replacement
 * (core/state/replacement-claims.ts), so that of the two only one has it. Resolves with the
 * node the instance is taken for.
 */
export async function takeInstance(leases: LeaseStore, instanceId: string, nodeId: string): Promise<string> {
  for (;;) {
    try {
      await claimReplacement(leases, instanceId, nodeId);
      return nodeId;
    } catch (error) {
      if (!(error instanceof ReplacementClaimedError)) throw error;
    }
    const holder = await replacementHolder(leases, instanceId);
    // Released (the recovery gave up on this instance) between the two reads: claim it again.
    if (holder !== undefined) return holder;
  }
}
