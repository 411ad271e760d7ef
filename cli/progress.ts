import { setTimeout as sleep } from "node:timers/promises";
import type { Operation, OperationService } from "../core/operations.js";
import { isFinished } from "../core/state/operations.js";
import { CliError } from "./failures.js";
import { describeOperationProgress } from "./views.js";

const SHOW_AFTER_MS = 300;
const FRAMES = ["⠋", "⠙", "⠹", "⠸", "⠼", "⠴", "⠦", "⠧", "⠇", "⠏"];

/** How often a progress detail is asked for (it is a request to the agent). */
const DETAIL_EVERY_MS = 1000;

/**
 * Runs `work` with a spinner and the elapsed time on stderr, when stderr is a terminal; otherwise
 * (pipes, scripts, tests) prints nothing. The API is synchronous, so how far the work has come is
 * asked for separately: `detail`, when given, is polled and shown after the label.
 */
export async function withProgress<T>(
  label: string,
  work: () => Promise<T>,
  detail?: () => Promise<string | undefined>,
): Promise<T> {
  const stream = process.stderr;
  if (!stream.isTTY) return work();
  const startedAt = Date.now();
  let frame = 0;
  let drawn = false;
  let shown: string | undefined;
  const draw = () => {
    const elapsedMs = Date.now() - startedAt;
    // Quick answers finish before this and print no spinner at all, so nothing flickers.
    if (elapsedMs < SHOW_AFTER_MS) return;
    drawn = true;
    const suffix = shown === undefined ? "" : `: ${shown}`;
    stream.write(
      `\r${FRAMES[frame++ % FRAMES.length]} ${label} (${Math.floor(elapsedMs / 1000)}s)${suffix}\x1b[K`,
    );
  };
  const timer = setInterval(draw, 100);
  const poller =
    detail === undefined
      ? undefined
      : setInterval(() => {
          detail().then(
            (text) => {
              shown = text;
            },
            () => {},
          );
        }, DETAIL_EVERY_MS);
  try {
    return await work();
  } finally {
    clearInterval(timer);
    clearInterval(poller);
    if (drawn) stream.write("\r\x1b[K");
  }
}

export interface FollowOptions {
  /** How often the operation is read. */
  pollIntervalMs?: number;
  /** Without a terminal: how often a progress line is printed. */
  lineIntervalMs?: number;
  /** Where progress goes: a spinner on a terminal, plain lines otherwise. */
  stream?: NodeJS.WritableStream & { isTTY?: boolean };
}

const FOLLOW_POLL_MS = 1000;
const FOLLOW_LINE_MS = 5000;

/**
 * Follows an operation until it ends, showing its progress on stderr: a one-line spinner on a
 * terminal; piped (scripts, CI logs), one plain line every few seconds, so a long wait still shows
 * it moves. Returns the operation when it succeeded; throws its error (exit 1) when it failed or was
 * cancelled.
 */
export async function followOperation(
  client: Pick<OperationService, "getOperation">,
  id: string,
  options: FollowOptions = {},
): Promise<Operation> {
  const stream = options.stream ?? process.stderr;
  const pollIntervalMs = options.pollIntervalMs ?? FOLLOW_POLL_MS;
  const lineIntervalMs = options.lineIntervalMs ?? FOLLOW_LINE_MS;
  let operation = await client.getOperation(id);
  const label = `${operation.kind} of ${operation.volumeName} on ${operation.node}`;
  let lineAt = Number.NEGATIVE_INFINITY;
  const untilEnded = async () => {
    for (;;) {
      if (!stream.isTTY && Date.now() - lineAt >= lineIntervalMs && !isFinished(operation)) {
        stream.write(`${label}: ${operationStatus(operation)}\n`);
        lineAt = Date.now();
      }
      if (isFinished(operation)) return operation;
      await sleep(pollIntervalMs);
      operation = await client.getOperation(id);
    }
  };
  const ended = stream.isTTY
    ? await withProgress(label, untilEnded, async () => operationStatus(operation))
    : await untilEnded();
  if (ended.state === "failed") throw new CliError(`${label} failed: ${ended.error}`);
  if (ended.state === "cancelled") throw new CliError(`${label} was cancelled`);
  return ended;
}

/** e.g. "running, 12 MiB of 40 MiB (30%), 5 MiB/s" or "running (stalled: node-2: down)". */
function operationStatus(operation: Operation): string {
  const stalled = operation.stalled === null ? "" : ` (stalled: ${operation.stalled})`;
  const progress = operation.progress === null ? "" : `, ${describeOperationProgress(operation)}`;
  return `${operation.state}${stalled}${progress}`;
}
