import { randomBytes } from "node:crypto";
import { chmod, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";

/** `<dir>/cluster-secret`: the key agents authenticate each other with on the replication protocol. */
export const CLUSTER_SECRET_FILE = "cluster-secret";
/** 32 random bytes, hex: well above the protocol's 16-byte minimum, and printable in an env var. */
const SECRET_BYTES = 32;
const SECRET_MODE = 0o600;

/**
 * The local cluster's secret: created once, then read back on every start, so agents of this cluster
 * keep recognising each other across restarts. Only the owner may read it.
 */
export function loadClusterSecret(dir: string): Promise<string> {
  return loadOrCreateSecret(join(dir, CLUSTER_SECRET_FILE));
}

/**
 * The secret kept in `path`, created there with 32 random bytes (hex) if the file is missing or
 * empty. Only the owner may read the file.
 */
export async function loadOrCreateSecret(path: string): Promise<string> {
  try {
    const secret = (await readFile(path, "utf8")).trim();
    // A copy made with a loose umask (or restored from a backup) is tightened rather than trusted as is.
    await chmod(path, SECRET_MODE);
    if (secret.length > 0) return secret;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== "ENOENT") throw error;
  }
  const secret = randomBytes(SECRET_BYTES).toString("hex");
  // Created with the mode already set: the secret is never readable by others, not even for a moment.
  await writeFile(path, `${secret}\n`, { mode: SECRET_MODE });
  await chmod(path, SECRET_MODE);
  return secret;
}
