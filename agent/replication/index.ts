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
  ReplicaRefusedError,
  ReplicaUnavailableError,
  StaleEpochError,
  UnknownVolumeError,
} from "./errors.js";
export { Status } from "./protocol.js";
export { RemoteReplica } from "./remote-replica.js";
export type { ServedReplica } from "./served-replica.js";
export { type ReplicaServer, type ReplicaServerOptions, startReplicaServer } from "./server.js";
