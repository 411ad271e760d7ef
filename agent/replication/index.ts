export { type ClusterSecret, HANDSHAKE_TIMEOUT_MS, MIN_SECRET_BYTES } from "./auth.js";
export {
  connectReplica,
  DEFAULT_REQUEST_TIMEOUT_MS,
  ReplicaClient,
  type ReplicaClientOptions,
  ReplicaState,
} from "./client.js";
export {
  ReplicaAuthError,
  ReplicaExistsError,
  ReplicaRefusedError,
  ReplicaUnavailableError,
  StaleEpochError,
  UnknownVolumeError,
} from "./errors.js";
export { Status } from "./protocol.js";
export { RemoteReplica } from "./remote-replica.js";
export {
  AllocatedRunsPage,
  MAX_RUNS_PER_PAGE,
  type ReplicaAdmin,
  ReplicaInfo,
  type ReplicaSpec,
} from "./replica-admin.js";
export type { ServedReplica } from "./served-replica.js";
export { type ReplicaServer, type ReplicaServerOptions, startReplicaServer } from "./server.js";
