import { z } from "zod";

/**
 * Errors that cross a boundary (the agent's control API, the supervisor's control channel, the CLI)
 * carry a code that says what kind of mistake it was, so a server can answer with the right HTTP
 * status and the CLI with one clear sentence.
 */
export const ERROR_HTTP_STATUS = {
  INVALID_ARGUMENT: 400,
  NOT_FOUND: 404,
  METHOD_NOT_ALLOWED: 405,
  ALREADY_EXISTS: 409,
  FAILED_PRECONDITION: 409,
  PAYLOAD_TOO_LARGE: 413,
  RESOURCE_EXHAUSTED: 507,
  UNAVAILABLE: 503,
  INTERNAL: 500,
} as const;

export type ErrorCode = keyof typeof ERROR_HTTP_STATUS;

export class StrataError extends Error {
  constructor(
    readonly code: ErrorCode,
    message: string,
  ) {
    super(message);
    this.name = "StrataError";
  }

  get httpStatus(): number {
    return ERROR_HTTP_STATUS[this.code];
  }
}

export const notFound = (what: string) => new StrataError("NOT_FOUND", `${what} not found`);
export const invalid = (message: string) => new StrataError("INVALID_ARGUMENT", message);
export const conflict = (message: string) => new StrataError("FAILED_PRECONDITION", message);

const ERROR_CODES = Object.keys(ERROR_HTTP_STATUS) as [ErrorCode, ...ErrorCode[]];

/**
 * The body of every error answer, from the agent's control API and the supervisor's control
 * channel alike. A code this build does not know (a newer server) still carries its message.
 */
export const ErrorReply = z.object({
  error: z.object({ code: z.enum(ERROR_CODES).catch("INTERNAL"), message: z.string() }),
});
export type ErrorReply = z.infer<typeof ErrorReply>;

export const errorReply = (error: StrataError): ErrorReply => ({
  error: { code: error.code, message: error.message },
});

/**
 * The error an answer's body (decoded JSON) carries, or, when it is not an error reply (a proxy's
 * page, a crash), an INTERNAL one with `otherwise` as its message.
 */
export function errorFromReply(body: unknown, otherwise: string): StrataError {
  const parsed = ErrorReply.safeParse(body);
  return parsed.success
    ? new StrataError(parsed.data.error.code, parsed.data.error.message)
    : new StrataError("INTERNAL", otherwise);
}
