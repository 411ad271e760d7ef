/**
 * What a replica client's promises reject with. The coordinator must tell apart "the replica is
 * gone" (ReplicaUnavailableError: remove it from the set) from "the replica refused me"
 * (StaleEpochError: I am fenced, stop writing), so they share no class but Error.
 */
import { BlockIoError } from "../block-device.js";
import { STATUS_ERRNO, Status } from "./wire/protocol.js";

/** The replica could not answer: connection lost or refused, timeout, client closed. */
export class ReplicaUnavailableError extends Error {
  constructor(
    readonly reason: "connect-failed" | "connection-lost" | "timeout" | "closed" | "protocol-error",
    message: string,
  ) {
    super(message);
    this.name = "ReplicaUnavailableError";
  }
}

/** The peer (or we) could not prove to hold the cluster secret: misconfiguration or an impostor. */
export class ReplicaAuthError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "ReplicaAuthError";
  }
}

/** The replica answered and refused the request; `status` is the protocol's code. */
export class ReplicaRefusedError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
    this.name = "ReplicaRefusedError";
  }
}

/** The request's epoch was not the replica's: the sender is fenced (or the replica is behind). */
export class StaleEpochError extends ReplicaRefusedError {
  constructor(
    readonly requestEpoch: number,
    /** The replica's epoch when it refused. */
    readonly replicaEpoch: number,
  ) {
    super(Status.STALE_EPOCH, `epoch ${requestEpoch} refused: the replica is at epoch ${replicaEpoch}`);
    this.name = "StaleEpochError";
  }
}

/** The server holds no replica of the volume. */
export class UnknownVolumeError extends ReplicaRefusedError {
  constructor(readonly volumeId: string) {
    super(Status.UNKNOWN_VOLUME, `the replica server has no volume ${volumeId}`);
    this.name = "UnknownVolumeError";
  }
}

/** CREATE_REPLICA: the server already holds another replica (another replica id) of the volume. */
export class ReplicaExistsError extends ReplicaRefusedError {
  constructor(
    readonly volumeId: string,
    message: string,
  ) {
    super(Status.REPLICA_EXISTS, message || `the replica server already has a replica of volume ${volumeId}`);
    this.name = "ReplicaExistsError";
  }
}

/** The replica has no snapshot with that id (a replica rebuilt after it was taken, say). */
export class UnknownSnapshotError extends ReplicaRefusedError {
  constructor(message: string) {
    super(Status.UNKNOWN_SNAPSHOT, message || "the replica has no such snapshot");
    this.name = "UnknownSnapshotError";
  }
}

/**
 * The error a non-OK reply status stands for. I/O errnos become BlockIoErrors, so a coordinator
 * can hand them to its NBD client as they are.
 */
export function replyError(
  status: number,
  request: { volumeId: string; epoch: number },
  replicaEpoch: number,
  message: string,
): Error {
  const errno = STATUS_ERRNO.get(status);
  if (errno !== undefined) return new BlockIoError(errno, message || `replica answered ${errno}`);
  if (status === Status.STALE_EPOCH) return new StaleEpochError(request.epoch, replicaEpoch);
  if (status === Status.UNKNOWN_VOLUME) return new UnknownVolumeError(request.volumeId);
  if (status === Status.REPLICA_EXISTS) return new ReplicaExistsError(request.volumeId, message);
  if (status === Status.UNKNOWN_SNAPSHOT) return new UnknownSnapshotError(message);
  return new ReplicaRefusedError(status, message || `replica refused the request (status ${status})`);
}
