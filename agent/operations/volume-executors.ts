import { volumeOfCloudsnap } from "../../core/cloud/cloudsnap-layout.js";
import { OperationParams } from "../../core/state/records.js";
import type { Rebuild } from "../replication/coordinator/rebuild.js";
import type { VolumeCloudsnaps } from "../volumes/cloudsnaps.js";
import type { CopyObserver } from "../volumes/reconciler.js";
import { takeScheduledSnapshot } from "../volumes/scheduled-snapshots.js";
import type { ClusterVolumes } from "../volumes/service.js";
import type { OperationContext, OperationExecutors } from "./runner.js";

/** How often a running operation's copy progress is sampled (the runner writes it less often). */
const PROGRESS_SAMPLE_MS = 500;

/**
 * The volume service's long work as operations: each executor runs one change of a volume on this
 * node (through its coordinator here, or a maintenance attachment when the volume is attached
 * nowhere) and reports the bytes its rebuilds and resyncs copy. A change already under way is not
 * stopped half-way (a replica left half-copied helps no one): cancelling it waits for it.
 */
export function volumeExecutors(
  volumes: ClusterVolumes,
  cloudsnaps: VolumeCloudsnaps,
  nodeId: string,
): OperationExecutors {
  return {
    replication: (operation, context) => {
      const { replicationFactor } = OperationParams.replication.parse(operation.params);
      return withCopyProgress(context, async (observe) => {
        const updated = await volumes.updateReplication(operation.volumeName, replicationFactor, observe);
        for (const warning of updated.warnings ?? []) context.warn(warning);
      });
    },
    repair: (operation, context) =>
      withCopyProgress(context, (observe) => volumes.repairVolume(operation.volumeName, observe)),
    "add-replica": (operation, context) => {
      const { targetNode } = OperationParams["add-replica"].parse(operation.params);
      return withCopyProgress(context, (observe) =>
        volumes.addReplica(operation.volumeName, {
          ...(targetNode === undefined ? {} : { targetNode }),
          observe,
        }),
      );
    },
    "drop-replica": async (operation) => {
      const { replicaId } = OperationParams["drop-replica"].parse(operation.params);
      await volumes.dropReplica(operation.volumeName, replicaId);
    },
    "move-replica": (operation, context) => {
      const { replicaId, targetNode } = OperationParams["move-replica"].parse(operation.params);
      return withCopyProgress(context, (observe) =>
        volumes.moveReplica(operation.volumeName, replicaId, targetNode, observe),
      );
    },
    rebuild: (operation, context) => {
      const { replicaId } = OperationParams.rebuild.parse(operation.params);
      return withCopyProgress(context, (observe) =>
        volumes.rebuildReplica(operation.volumeName, replicaId, observe),
      );
    },
    resync: (operation, context) => {
      const { replicaId } = OperationParams.resync.parse(operation.params);
      return withCopyProgress(context, (observe) =>
        volumes.resyncReplica(operation.volumeName, replicaId, observe),
      );
    },
    clone: async (operation) => {
      const { snapshot, target } = OperationParams.clone.parse(operation.params);
      await volumes.cloneSnapshot(operation.volumeName, snapshot, target, {});
    },
    cloudsnap: async (operation, context) => {
      const params = OperationParams.cloudsnap.parse(operation.params);
      const taken = await cloudsnaps.take([operation.volumeName, ...(params.with ?? [])], {
        holder: `${nodeId}/${operation.id}`,
        ...(params.group === undefined ? {} : { group: params.group }),
        ...(params.schedule === undefined ? {} : { schedule: params.schedule }),
        hooks: {
          ...(params.preHook === undefined ? {} : { pre: params.preHook }),
          ...(params.postHook === undefined ? {} : { post: params.postHook }),
        },
        onProgress: (done, total) => context.progress(done, total),
      });
      const { id, ...figures } = taken.find((cloudsnap) => cloudsnap.volumeName === operation.volumeName)!;
      return { cloudsnap: id, ...figures, cloudsnaps: taken.map((cloudsnap) => cloudsnap.id) };
    },
    restore: async (operation, context) => {
      const { cloudsnap, replicationFactor, labels, nodeSelector } = OperationParams.restore.parse(
        operation.params,
      );
      const volume = await cloudsnaps.restore(
        cloudsnap,
        {
          name: operation.volumeName,
          volumeId: operation.volumeId,
          labels: labels ?? {},
          nodeSelector: nodeSelector ?? {},
          ...(replicationFactor === undefined ? {} : { replicationFactor }),
        },
        (progress) => context.progress(progress.restoredBytes, progress.totalBytes),
      );
      for (const warning of volume.warnings ?? []) context.warn(warning);
      return { volume: volume.name, volumeId: volume.id, cloudsnap };
    },
    "cloudsnap-retention": async (operation) => {
      const params = OperationParams["cloudsnap-retention"].parse(operation.params);
      // A group's retention names its other volumes' cloudsnaps too: each volume under its own lease.
      const byVolume = new Map<string, string[]>();
      for (const id of params.cloudsnaps) {
        const volumeId = volumeOfCloudsnap(id);
        byVolume.set(volumeId, [...(byVolume.get(volumeId) ?? []), id]);
      }
      const deleted: string[] = [];
      for (const [volumeId, ids] of byVolume) {
        const gone = await cloudsnaps.deleteCloudsnaps(volumeId, ids, `${nodeId}/${operation.id}`);
        deleted.push(...gone.map((entry) => entry.id));
      }
      return { deleted };
    },
    "scheduled-snapshot": async (operation) => {
      const params = OperationParams["scheduled-snapshot"].parse(operation.params);
      return { ...(await takeScheduledSnapshot(volumes, operation.volumeName, params)) };
    },
  };
}

/**
 * Runs `work`, reporting the bytes copied of every copy it starts, summed (a raise from 1 to 3
 * replicas is two copies), while it runs and once more when it ends.
 */
async function withCopyProgress(
  context: OperationContext,
  work: (observe: CopyObserver) => Promise<void>,
): Promise<void> {
  const copies: Rebuild[] = [];
  const report = () => {
    if (copies.length === 0) return;
    const progress = copies.map((copy) => copy.progress);
    context.progress(
      progress.reduce((sum, copy) => sum + copy.copiedBytes, 0),
      progress.reduce((sum, copy) => sum + copy.totalBytes, 0),
    );
  };
  const timer = setInterval(report, PROGRESS_SAMPLE_MS);
  try {
    await work((copy) => copies.push(copy));
  } finally {
    clearInterval(timer);
    report();
  }
}
