import { StrataError } from "../errors.js";

/**
 * Typed failures of the state store. They extend StrataError so the control API and the CLI map them
 * to a status and one sentence without knowing about the store; callers that can recover (retry a
 * compare-and-swap, pick another name) test for the class.
 */

export class RecordNotFoundError extends StrataError {
  constructor(readonly what: string) {
    super("NOT_FOUND", `${what} not found`);
    this.name = "RecordNotFoundError";
  }
}

export class RecordExistsError extends StrataError {
  constructor(readonly what: string) {
    super("ALREADY_EXISTS", `${what} already exists`);
    this.name = "RecordExistsError";
  }
}

/**
 * A compare-and-swap lost: the volume's epoch is no longer the one the caller read. The caller
 * re-reads (the current epoch is here to say how far behind it was) and retries or gives up.
 */
export class EpochConflictError extends StrataError {
  constructor(
    readonly volumeId: string,
    readonly expectedEpoch: number,
    readonly currentEpoch: number,
  ) {
    super(
      "FAILED_PRECONDITION",
      `volume ${volumeId} changed concurrently: expected epoch ${expectedEpoch}, found ${currentEpoch}`,
    );
    this.name = "EpochConflictError";
  }
}

/**
 * A node (a drive set) is served by a live agent on another instance: a second agent must not
 * serve the same replicas (DESIGN.md, Drive sets).
 */
export class DriveSetHeldError extends StrataError {
  constructor(
    readonly nodeId: string,
    readonly heldBy: string,
  ) {
    super("FAILED_PRECONDITION", `node ${nodeId} is served by the live agent on instance ${heldBy}`);
    this.name = "DriveSetHeldError";
  }
}

/**
 * An agent that does not know its instance (STRATA_INSTANCE_ID unset) asked to register a node whose
 * record names one: it cannot prove it is not a second agent for that drive set, so it must not
 * take the node over.
 */
export class InstanceUnknownError extends StrataError {
  constructor(
    readonly nodeId: string,
    readonly instanceId: string,
  ) {
    super(
      "FAILED_PRECONDITION",
      `node ${nodeId} is registered on instance ${instanceId}: an agent that names no instance (STRATA_INSTANCE_ID unset) cannot register it`,
    );
    this.name = "InstanceUnknownError";
  }
}
