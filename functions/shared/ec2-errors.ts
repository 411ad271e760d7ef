import { RefusedError, TransientError } from "./errors.js";

/** EC2 refusals that pass: the volume or instance is between states, or the API is throttling. */
const TRANSIENT_CODES = new Set([
  "IncorrectState",
  "IncorrectInstanceState",
  "VolumeInUse",
  "RequestLimitExceeded",
  "Throttling",
  "ThrottlingException",
  "ServiceUnavailable",
  "InternalError",
]);

/** EC2 refusals that will not pass: retrying cannot make a volume attach across zones. */
const REFUSED_CODES = new Set([
  "InvalidVolume.ZoneMismatch",
  "InvalidVolume.NotFound",
  "InvalidInstanceID.NotFound",
]);

/**
 * An EC2 error as the workflows branch on it (see WorkflowErrorName): transient ones are retried
 * with backoff by the state machine, refusals go to its Catch path. Others are left as they are.
 */
export function classifyEc2Error(error: unknown, doing: string): unknown {
  if (!(error instanceof Error)) return error;
  if (TRANSIENT_CODES.has(error.name)) return new TransientError(`${doing}: ${error.name}: ${error.message}`);
  if (REFUSED_CODES.has(error.name)) return new RefusedError(`${doing}: ${error.name}: ${error.message}`);
  return error;
}
