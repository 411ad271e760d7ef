/** Exit statuses of `strata`: 1 when the cluster refused or could not do the work, 2 for bad usage. */
export const EXIT_REFUSED = 1;
export const EXIT_USAGE = 2;

/** A failure the user can act on: printed as one sentence, no stack. */
export class CliError extends Error {
  constructor(
    message: string,
    readonly exitCode: number = EXIT_REFUSED,
  ) {
    super(message);
    this.name = "CliError";
  }
}

/** The command line itself is wrong (a bad size, a malformed VOLUME@SNAPSHOT): nothing was sent. */
export const usageError = (message: string) => new CliError(message, EXIT_USAGE);

/** The agent answered with an error: its message is shown as is. */
export class ApiRefusal extends CliError {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message, EXIT_REFUSED);
    this.name = "ApiRefusal";
  }
}

export class AgentUnreachable extends CliError {
  constructor(readonly url: string) {
    super(`cannot reach the Strata agent at ${url}: is \`strata cluster up\` running?`, EXIT_REFUSED);
    this.name = "AgentUnreachable";
  }
}

/** Prints a failure as `error: <sentence>` and returns the exit status to use. */
export function reportFailure(error: unknown, stderr: NodeJS.WritableStream = process.stderr): number {
  if (error instanceof CliError) {
    stderr.write(`error: ${error.message}\n`);
    return error.exitCode;
  }
  // Not one of ours: still one line, but keep the stack reachable for bug reports.
  const message = error instanceof Error ? error.message : String(error);
  stderr.write(`error: ${message}\n`);
  if (process.env.STRATA_DEBUG && error instanceof Error) stderr.write(`${error.stack}\n`);
  return EXIT_REFUSED;
}
