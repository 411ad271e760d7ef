import { pino } from "pino";
import { Pool } from "../../agent/pool.js";
import { ReplicaHost } from "../../agent/replica-host.js";
import { MiB } from "../store/helpers.js";

export const SIZE = 64 * MiB;
export const silent = pino({ level: "silent" });

/** A host on drives with the given capacities (paths under `root`), freshly opened. */
export async function openHost(root: string, capacities: number[] = [1024 * MiB]): Promise<ReplicaHost> {
  const pool = await Pool.open(
    capacities.map((capacityBytes, i) => ({ path: `${root}/d${i}`, capacityBytes })),
  );
  return ReplicaHost.open(pool, silent);
}
