import { createHash } from "node:crypto";

const MAX_TOKEN_LENGTH = 128;
const UNSAFE = /[^A-Za-z0-9_.:/-]/g;

/**
 * The request token of an operation a workflow starts: derived from the execution and what the
 * operation is for, so a task that runs twice finds the operation its first run started. Kept
 * within the token's alphabet and length; a long one keeps a readable head and a hash of the rest.
 */
export function requestToken(...parts: string[]): string {
  const token = parts.join(":").replace(UNSAFE, "_");
  if (token.length <= MAX_TOKEN_LENGTH) return token;
  const digest = createHash("sha256").update(token).digest("hex").slice(0, 16);
  return `${token.slice(0, MAX_TOKEN_LENGTH - digest.length - 1)}-${digest}`;
}
