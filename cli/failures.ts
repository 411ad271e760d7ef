import { StrataError } from "../core/errors.js";

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

/** Prints a failure as `error: <sentence>` and returns the exit status to use. */
export function reportFailure(error: unknown, stderr: NodeJS.WritableStream = process.stderr): number {
  // A StrataError is a refusal from an agent or the supervisor, as their clients report it.
  if (error instanceof CliError || error instanceof StrataError) {
    stderr.write(`error: ${error.message}\n`);
    return error instanceof CliError ? error.exitCode : EXIT_REFUSED;
  }
  // Not one of ours: still one line, but keep the stack reachable for bug reports.
  const message = error instanceof Error ? error.message : String(error);
  stderr.write(`error: ${message}\n`);
  if (process.env.STRATA_DEBUG && error instanceof Error) stderr.write(`${error.stack}\n`);
  return EXIT_REFUSED;
}
