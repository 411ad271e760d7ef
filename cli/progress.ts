const SHOW_AFTER_MS = 300;
const FRAMES = ["⠋", "⠙", "⠹", "⠸", "⠼", "⠴", "⠦", "⠧", "⠇", "⠏"];

/**
 * Runs `work` with a spinner and the elapsed time on stderr, when stderr is a terminal; otherwise
 * (pipes, scripts, tests) prints nothing. The API is synchronous, so there is no percentage to show.
 */
export async function withProgress<T>(label: string, work: () => Promise<T>): Promise<T> {
  const stream = process.stderr;
  if (!stream.isTTY) return work();
  const startedAt = Date.now();
  let frame = 0;
  let drawn = false;
  const draw = () => {
    const elapsedMs = Date.now() - startedAt;
    // Quick answers finish before this and print no spinner at all, so nothing flickers.
    if (elapsedMs < SHOW_AFTER_MS) return;
    drawn = true;
    stream.write(`\r${FRAMES[frame++ % FRAMES.length]} ${label} (${Math.floor(elapsedMs / 1000)}s)\x1b[K`);
  };
  const timer = setInterval(draw, 100);
  try {
    return await work();
  } finally {
    clearInterval(timer);
    if (drawn) stream.write("\r\x1b[K");
  }
}
