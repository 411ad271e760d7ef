/**
 * A refusal the replica server decides itself (not an I/O errno), with the status its reply
 * carries. Replica management refusals come from the node as StrataErrors (core/errors.ts) and
 * are translated here, so the server speaks protocol statuses only.
 */
import { StrataError } from "../../../core/errors.js";
import { Status } from "../wire/protocol.js";

export class Refusal extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
    this.name = "Refusal";
  }
}

/** The protocol status of each management refusal; other StrataErrors stay I/O errors. */
const STRATA_STATUS: Partial<Record<StrataError["code"], number>> = {
  ALREADY_EXISTS: Status.REPLICA_EXISTS,
  FAILED_PRECONDITION: Status.REPLICA_IN_USE,
  INVALID_ARGUMENT: Status.BAD_REQUEST,
  NOT_FOUND: Status.UNKNOWN_VOLUME,
};

/** `error` as a Refusal when it is one the protocol has a status for, else unchanged. */
export function asRefusal(error: unknown): unknown {
  if (!(error instanceof StrataError)) return error;
  const status = STRATA_STATUS[error.code];
  return status === undefined ? error : new Refusal(status, error.message);
}
