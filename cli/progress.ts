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
