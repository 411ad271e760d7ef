/**
 * A refusal as an AWS service states it: the error code the SDK turns into its exception class
 * (`ExecutionAlreadyExists`, `IncorrectState`, `ResourceNotFoundException` ...), a message, and the
 * HTTP status. The local endpoints throw it from their services and write it in each protocol's own
 * error shape, so callers see exactly the exceptions they would see in AWS.
 */
export class AwsServiceError extends Error {
  constructor(
    readonly code: string,
    message: string,
    readonly httpStatus = 400,
  ) {
    super(message);
    this.name = code;
  }
}
