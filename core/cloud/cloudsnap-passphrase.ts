import { readFile } from "node:fs/promises";
import { conflict } from "../errors.js";

/**
 * Where a process finds the passphrase that wraps cloudsnap data keys when there is no KMS (the local
 * cluster): the passphrase itself, else a file holding it. The local cluster gives its agents the
 * file (generated on its first start, or another cluster's to restore that cluster's cloudsnaps).
 */
export const CLOUDSNAP_PASSPHRASE_VARIABLE = "STRATA_CLOUDSNAP_PASSPHRASE";
export const CLOUDSNAP_PASSPHRASE_FILE_VARIABLE = "STRATA_CLOUDSNAP_PASSPHRASE_FILE";

/** The passphrase, with a file's trailing newline dropped; refused when neither variable gives one. */
export async function cloudsnapPassphrase(env: NodeJS.ProcessEnv = process.env): Promise<string> {
  const given = env[CLOUDSNAP_PASSPHRASE_VARIABLE];
  if (given !== undefined && given !== "") return given;
  const path = env[CLOUDSNAP_PASSPHRASE_FILE_VARIABLE];
  if (path === undefined || path === "")
    throw conflict(
      `no cloudsnap passphrase: set ${CLOUDSNAP_PASSPHRASE_VARIABLE}, or ${CLOUDSNAP_PASSPHRASE_FILE_VARIABLE} to a file holding it`,
    );
  const passphrase = (await readFile(path, "utf8")).replace(/\r?\n$/, "");
  if (passphrase === "") throw conflict(`the cloudsnap passphrase file ${path} is empty`);
  return passphrase;
}
