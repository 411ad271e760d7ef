/** The subset of dynalite's API local mode uses (dynalite ships no type declarations). */
declare module "dynalite" {
  import type { Server } from "node:http";

  interface DynaliteOptions {
    /** A LevelDB directory, so the table outlives restarts of the local cluster; in memory without. */
    path?: string;
    createTableMs: number;
    deleteTableMs: number;
    updateTableMs: number;
  }

  export default function dynalite(options: DynaliteOptions): Server;
}
