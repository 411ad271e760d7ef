import { z } from "zod";

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

/** What a Catch path hands on (ResultPath of its error output): Step Functions' {Error, Cause}. */
export const TaskError = z.object({ Error: z.string(), Cause: z.string().optional() });
export type TaskError = z.infer<typeof TaskError>;

/** A caught task error in one line: its name, then what its cause says. */
export function describeTaskError(error: TaskError): string {
  return `${error.Error}: ${causeOf(error.Cause)}`;
}

/** A Lambda error's Cause is a JSON document ({errorMessage, errorType, trace}); its message reads best. */
function causeOf(cause: string | undefined): string {
  if (cause === undefined) return "no cause given";
  try {
    const parsed = JSON.parse(cause) as { errorMessage?: unknown };
    return typeof parsed.errorMessage === "string" ? parsed.errorMessage : cause;
  } catch {
    return cause;
  }
}
