/**
 * What a replica's error means for the coordinator. Three answers, in this order of precedence
 * when one request fans out to several replicas and they disagree:
 * - "fenced": the replica is at another epoch, so someone else holds the volume; stop writing.
 * - "client": the request itself failed (ENOSPC, EINVAL...): the client gets that errno; the
 *   replica is healthy and stays in the set.
 * - "replica-failed": the replica cannot be counted on (gone, timed out, I/O error, lost the
 *   volume, refused for a reason of its own): remove it from the set.
 */
import { BlockIoError, type IoErrno } from "../../block-device.js";
import {
  ReplicaAuthError,
  ReplicaRefusedError,
  ReplicaUnavailableError,
  StaleEpochError,
} from "../errors.js";

export type ReplicaErrorKind = "fenced" | "client" | "replica-failed";

/** Errnos that say the replica (its drive, its process) failed, not that the request was wrong. */
const REPLICA_FAILURE_ERRNOS: ReadonlySet<IoErrno> = new Set(["EIO", "ESHUTDOWN"]);

export function classifyReplicaError(error: unknown): ReplicaErrorKind {
  if (error instanceof StaleEpochError) return "fenced";
  if (error instanceof ReplicaUnavailableError || error instanceof ReplicaAuthError) return "replica-failed";
  // Unknown volume, not in sync, bad request: this replica cannot serve the volume.
  if (error instanceof ReplicaRefusedError) return "replica-failed";
  if (error instanceof BlockIoError)
    return REPLICA_FAILURE_ERRNOS.has(error.errno) ? "replica-failed" : "client";
  // Anything else comes from the local store's own checks (a snapshot limit, a bad argument).
  return "client";
}

export interface FanOutVerdict<M> {
  /** The first fencing error, if any replica answered with one. */
  fenced: Error | undefined;
  /** The first client error, if any. */
  clientError: Error | undefined;
  /** Replicas to remove. */
  failed: M[];
  /** Replicas that did the request. */
  succeeded: M[];
}

/** Sorts the settled results of one request sent to `members` (same order). */
export function judge<M>(members: readonly M[], results: readonly PromiseSettledResult<unknown>[]) {
  const verdict: FanOutVerdict<M> = { fenced: undefined, clientError: undefined, failed: [], succeeded: [] };
  results.forEach((result, i) => {
    const member = members[i]!;
    if (result.status === "fulfilled") {
      verdict.succeeded.push(member);
      return;
    }
    const error = result.reason instanceof Error ? result.reason : new Error(String(result.reason));
    const kind = classifyReplicaError(error);
    if (kind === "fenced") verdict.fenced ??= error;
    else if (kind === "client") verdict.clientError ??= error;
    else verdict.failed.push(member);
  });
  return verdict;
}
