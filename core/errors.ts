/**
 * Errors that cross a boundary (control API, CLI) carry a code that says what kind of mistake it was,
 * so the API can answer with the right HTTP status and the CLI with one clear sentence.
 */
export const ERROR_HTTP_STATUS = {
  INVALID_ARGUMENT: 400,
  NOT_FOUND: 404,
  ALREADY_EXISTS: 409,
  FAILED_PRECONDITION: 409,
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
