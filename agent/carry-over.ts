import { readFile, rm } from "node:fs/promises";
import { join } from "node:path";
import { z } from "zod";
import { Labels, ResourceName } from "../core/model.js";
import { RecordExistsError, RecordNotFoundError } from "../core/state/errors.js";
import type { StateStore } from "../core/state/store.js";
import { FIRST_EPOCH } from "../core/state/volumes.js";
import { syncDirectory } from "./durable-file.js";
import type { Logger } from "./log.js";
import type { ReplicaHost } from "./replica-host.js";
import type { Replica } from "./store/replica.js";

/**
 * What a single-replica volume kept next to its replica before every volume was a cluster volume:
 * the volume lived on its node alone and the state store never heard of it.
 */
const NODE_LOCAL_RECORD = "volume.json";
const NodeLocalVolume = z.object({
  formatVersion: z.literal(1),
  id: z.string(),
  name: ResourceName,
  labels: Labels,
  createdAt: z.string(),
  attached: z.boolean(),
});
type NodeLocalVolume = z.infer<typeof NodeLocalVolume>;

/**
 * Writes every node-local volume of this node into the state store as a one-replica cluster volume
 * (its snapshots, then its record, then its attachment), and only then removes its volume.json: a
 * crash in between is finished at the next start, and no volume silently disappears. A name the
 * cluster already gives another volume stops the agent, saying how to resolve it.
 */
export async function carryOverNodeLocalVolumes(
  replicas: ReplicaHost,
  store: StateStore,
  nodeId: string,
  log: Logger,
): Promise<void> {
  for (const replica of replicas.list()) {
    const dir = replicas.dirOf(replica.volumeId)!;
    const volume = await readNodeLocalVolume(dir);
    if (volume === undefined) continue;
    if (volume.id !== replica.volumeId) {
      throw new Error(
        `${join(dir, NODE_LOCAL_RECORD)} names volume ${volume.id}, but the replica there is of ${replica.volumeId}`,
      );
    }
    await recordVolume(store, volume, replica, nodeId, dir);
    await rm(join(dir, NODE_LOCAL_RECORD));
    await syncDirectory(dir);
    log.info(
      { volume: volume.name, volumeId: volume.id },
      "node-local volume carried over into the cluster state",
    );
  }
}

async function readNodeLocalVolume(dir: string): Promise<NodeLocalVolume | undefined> {
  const path = join(dir, NODE_LOCAL_RECORD);
  let text: string;
  try {
    text = await readFile(path, "utf8");
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw error;
  }
  const parsed = NodeLocalVolume.safeParse(JSON.parse(text));
  if (!parsed.success)
    throw new Error(`${path} is not a valid volume record: ${z.prettifyError(parsed.error)}`);
  return parsed.data;
}

async function recordVolume(
  store: StateStore,
  volume: NodeLocalVolume,
  replica: Replica,
  nodeId: string,
  dir: string,
): Promise<void> {
  const existing = await store.volumes.get(volume.id).catch((error: unknown) => {
    if (error instanceof RecordNotFoundError) return undefined;
    throw error;
  });
  // Recorded by a start that crashed before it removed volume.json.
  if (existing !== undefined) return;
  for (const snapshot of replica.snapshots()) {
    await store.snapshots
      .create({
        id: snapshot.id,
        volumeId: volume.id,
        name: snapshot.name,
        sizeBytes: replica.sizeBytes,
        createdAt: snapshot.createdAt,
      })
      .catch((error: unknown) => {
        if (!(error instanceof RecordExistsError)) throw error;
      });
  }
  try {
    await store.volumes.create({
      id: volume.id,
      name: volume.name,
      sizeBytes: replica.sizeBytes,
      replicationFactor: 1,
      labels: volume.labels,
      replicas: [{ replicaId: replica.replicaId, node: nodeId, state: "in-sync" }],
    });
  } catch (error) {
    if (!(error instanceof RecordExistsError)) throw error;
    throw new Error(
      `cannot carry node-local volume "${volume.name}" (${dir}) into the cluster: the cluster already has a volume of that name. ` +
        `Delete the cluster's "${volume.name}" (strata volume delete ${volume.name}) and restart this agent, or remove ${dir} to drop this node's copy`,
    );
  }
  if (volume.attached) await store.volumes.updateIfEpoch(volume.id, FIRST_EPOCH, { attachedNode: nodeId });
}
