import { CommanderError } from "commander";
import { EXIT_USAGE, reportFailure } from "./failures.js";
import { buildProgram } from "./program.js";

/**
 * Entry point of `strata` (bundled to dist/cli.mjs). Exit status: 0 done, 1 refused or failed,
 * 2 usage error. Commander has already printed its own usage errors and help.
 */
try {
  await buildProgram().parseAsync(process.argv);
} catch (error) {
  if (error instanceof CommanderError) process.exitCode = error.exitCode === 0 ? 0 : EXIT_USAGE;
  else process.exitCode = reportFailure(error);
}
