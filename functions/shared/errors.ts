/**
 * The error names workflows branch on. Lambda reports a thrown error's `name` as its errorType,
 * which Step Functions matches against Retry and Catch `ErrorEquals`: transient ones are retried
 * with backoff, the rest go to the Catch path that records why.
 */
export const WorkflowErrorName = {
  /** The store, an AWS API or a node could not answer now; the same call may succeed later. */
  transient: "Strata.Transient",
  /** Asked for something that cannot be done (unknown node, a volume that cannot be placed). */
  refused: "Strata.Refused",
} as const;

export class TransientError extends Error {
  override readonly name = WorkflowErrorName.transient;
}

export class RefusedError extends Error {
  override readonly name = WorkflowErrorName.refused;
}

/** A Lambda error's Cause is a JSON document ({errorMessage, errorType, trace}); its message reads best. */
export function causeOf(cause: string | undefined): string {
  if (cause === undefined) return "no cause given";
  try {
    const parsed = JSON.parse(cause) as { errorMessage?: unknown };
    return typeof parsed.errorMessage === "string" ? parsed.errorMessage : cause;
  } catch {
    return cause;
  }
}
