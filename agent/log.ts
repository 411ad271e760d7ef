import { pino } from "pino";

/** One JSON line per event on stderr; `STRATA_LOG_LEVEL` picks the level (default info). */
export const log = pino(
  {
    name: "strata-agent",
    level: process.env.STRATA_LOG_LEVEL ?? "info",
    base: { pid: process.pid, node: process.env.STRATA_NODE_ID },
    timestamp: pino.stdTimeFunctions.isoTime,
  },
  pino.destination(2),
);

export type Logger = typeof log;
