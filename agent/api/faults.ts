import type { z } from "zod";
import { type ErrorCode, StrataError } from "../../core/errors.js";

/**
 * A refusal that belongs to the HTTP layer rather than to the volume service: no such route, wrong
 * method, a body that is too large or not JSON. Some need response headers of their own.
 */
export class ApiFault extends StrataError {
  constructor(
    code: ErrorCode,
    message: string,
    /** Extra response headers, e.g. Allow on a 405. */
    readonly headers: Record<string, string> = {},
  ) {
    super(code, message);
    this.name = "ApiFault";
  }
}

export const badRequest = (message: string) => new ApiFault("INVALID_ARGUMENT", message);

/** What the client is told, and whether the failure is ours (logged with its stack) or theirs. */
export interface Failure {
  error: StrataError;
  headers: Record<string, string>;
  unexpected: boolean;
}

export function toFailure(error: unknown): Failure {
  if (error instanceof StrataError) {
    const headers = error instanceof ApiFault ? error.headers : {};
    // An INTERNAL StrataError is still a bug or an I/O failure on our side: keep its stack in the log.
    return { error, headers, unexpected: error.code === "INTERNAL" };
  }
  // Never leak internals (paths, stack frames) to the client; the log has them.
  return {
    error: new StrataError("INTERNAL", "internal error in the Strata agent; see the agent log for details"),
    headers: {},
    unexpected: true,
  };
}

/**
 * Turns zod's issues into one sentence that names each offending field and says what is wrong,
 * e.g. `field "sizeBytes": size must be greater than 0; unknown field "foo"`.
 */
export function describeIssues(issues: readonly z.core.$ZodIssue[]): string {
  return issues.map(describeIssue).join("; ");
}

function describeIssue(issue: z.core.$ZodIssue): string {
  const path = issue.path.map(String).join(".");
  const within = path === "" ? "" : `${path}.`;
  switch (issue.code) {
    case "unrecognized_keys": {
      const names = issue.keys.map((key) => `"${within}${key}"`).join(", ");
      return `unknown ${issue.keys.length === 1 ? "field" : "fields"} ${names}`;
    }
    case "invalid_key": {
      const key = String(issue.path.at(-1));
      const parent = issue.path.slice(0, -1).map(String).join(".");
      return `invalid key "${key}" in "${parent}": ${issue.issues.map((inner) => inner.message).join(", ")}`;
    }
    case "invalid_type": {
      const detail = issue.message.replace(/^Invalid input: /, "");
      if (path === "") return `request body: ${detail}`;
      if (detail.endsWith("received undefined")) return `missing field "${path}" (${issue.expected})`;
      return `field "${path}": ${detail}`;
    }
    default:
      return path === "" ? `request body: ${issue.message}` : `field "${path}": ${issue.message}`;
  }
}
