import type { Volume } from "../../core/model.js";
import { OperationParams, type OperationRecord } from "../../core/state/records.js";
import type { ClusterVolumes } from "../volumes/service.js";
import type { OperationContext, OperationExecutors } from "./runner.js";

/** How often a running operation's copy progress is read from the volume's rebuilds. */
const PROGRESS_SAMPLE_MS = 1_000;

/**
 * The volume service's long work as operations: each executor runs one change of a volume on this
 * node (a coordinator here, or a maintenance attachment when the volume is attached nowhere) and
 * reports the bytes its rebuilds and resyncs copy. A change already under way cannot be stopped
 * half-way (a replica left half-copied is worse than a finished one): cancelling waits for it.
 */
export function volumeExecutors(volumes: ClusterVolumes): OperationExecutors {
  const track = (operation: OperationRecord, context: OperationContext, work: Promise<unknown>) =>
    withCopyProgress(volumes, operation.volumeName, context, work);
  return {
    replication: async (operation, context) => {
      const { replicationFactor } = OperationParams.replication.parse(operation.params);
      const updating = volumes.updateReplication(operation.volumeName, replicationFactor);
      await track(operation, context, updating);
      for (const warning of (await updating).warnings ?? []) context.warn(warning);
    },
    repair: (operation, context) => track(operation, context, volumes.repairVolume(operation.volumeName)),
    "add-replica": (operation, context) => {
      const { targetNode } = OperationParams["add-replica"].parse(operation.params);
      return track(operation, context, volumes.addReplica(operation.volumeName, targetNode));
    },
    "drop-replica": async (operation) => {
      const { replicaId } = OperationParams["drop-replica"].parse(operation.params);
      await volumes.dropReplica(operation.volumeName, replicaId);
    },
    rebuild: (operation, context) => {
      const { replicaId } = OperationParams.rebuild.parse(operation.params);
      return track(operation, context, volumes.rebuildReplica(operation.volumeName, replicaId));
    },
    resync: (operation, context) => {
      const { replicaId } = OperationParams.resync.parse(operation.params);
      return track(operation, context, volumes.resyncReplica(operation.volumeName, replicaId));
    },
    clone: async (operation) => {
      const { snapshot, target } = OperationParams.clone.parse(operation.params);
      await volumes.cloneSnapshot(operation.volumeName, snapshot, target, {});
    },
  };
}

/** Waits for `work`, reporting the bytes copied of the volume's rebuilds and resyncs meanwhile. */
async function withCopyProgress(
  volumes: ClusterVolumes,
  volume: string,
  context: OperationContext,
  work: Promise<unknown>,
): Promise<void> {
  const sample = async () => {
    const copies = copyProgress(await volumes.getVolume(volume).catch(() => undefined));
    if (copies !== undefined) context.progress(copies.copiedBytes, copies.totalBytes);
  };
  const timer = setInterval(() => void sample(), PROGRESS_SAMPLE_MS);
  try {
    await work;
  } finally {
    clearInterval(timer);
  }
}

/** The copies under way on a volume, summed; undefined when none is. */
function copyProgress(volume: Volume | undefined): { copiedBytes: number; totalBytes: number } | undefined {
  const copies = (volume?.replicas ?? []).flatMap((replica) => replica.rebuild ?? []);
  if (copies.length === 0) return undefined;
  return {
    copiedBytes: copies.reduce((sum, copy) => sum + copy.copiedBytes, 0),
    totalBytes: copies.reduce((sum, copy) => sum + copy.totalBytes, 0),
  };
}
