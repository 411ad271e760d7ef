import { HEARTBEAT_TIMEOUT_MS, type LivenessClock } from "../../core/liveness.js";
import type { StateStore } from "../../core/state/store.js";
import { awsClients } from "./clients.js";

/** What the workflow logic needs of the cluster: its store, its name, and the liveness rule's clock. */
export interface ClusterAccess {
  store: StateStore;
  clusterName: string;
  liveness(): LivenessClock;
}

export function clusterAccess(): ClusterAccess {
  const { store, settings } = awsClients();
  const heartbeatTimeoutMs = settings.STRATA_HEARTBEAT_TIMEOUT_MS ?? HEARTBEAT_TIMEOUT_MS;
  return {
    store,
    clusterName: settings.STRATA_CLUSTER_NAME,
    liveness: () => ({ heartbeatTimeoutMs, now: new Date() }),
  };
}
