import { randomUUID } from "node:crypto";
import { StrataError } from "../../core/errors.js";
import { placeVolume, requirePlacement } from "../../core/placement.js";
import { RecordExistsError } from "../../core/state/errors.js";
import type { NodeRecord, VolumeRecord } from "../../core/state/records.js";
import { FIRST_EPOCH } from "../../core/state/volumes.js";
import type { CreateVolume } from "../../core/volume-service.js";
import type { SnapshotReader } from "../replication/coordinator/coordinator.js";
import {
  chunksOf,
  DEFAULT_CHUNK_BYTES,
  DEFAULT_COPY_CONCURRENCY,
} from "../replication/coordinator/rebuild.js";
import { ReplicaUnavailableError } from "../replication/errors.js";
import type { ReplicaHandle } from "../replication/replica-handle.js";
import type { ClusterContext } from "./cluster-context.js";

/** Writes a new volume's data into its (empty) replicas, through handles at their first epoch. */
export type FillReplicas = (replicas: readonly ReplicaHandle[]) => Promise<void>;

export interface Provisioned {
  record: VolumeRecord;
  /** What the operator should know about the placement, e.g. replicas sharing a zone. */
  warnings: string[];
}

/**
 * Makes new volumes: places their replicas, creates them on their nodes, fills them when the volume
 * starts with data (a clone), and only then writes the volume's record, so a volume is listed only
 * once all its replicas exist and hold its data. A failure removes the replicas made so far. A node
 * that cannot be reached (it died and its heartbeat has not timed out yet) is left out and the
 * replicas are placed again without it. Callers hold the new name's lock.
 */
export class VolumeProvisioner {
  constructor(private readonly cluster: ClusterContext) {}

  /** `volumeId` is chosen by the caller when something refers to the volume before it exists (a restore's operation). */
  async create(
    request: CreateVolume,
    fill?: FillReplicas,
    volumeId: string = randomUUID(),
  ): Promise<Provisioned> {
    const { store } = this.cluster;
    if ((await store.volumes.getByName(request.name).catch(() => undefined)) !== undefined) {
      throw alreadyExists(request.name);
    }
    const unreachable = new Set<string>();
    for (;;) {
      const view = await this.cluster.clusterView();
      const placement = requirePlacement(
        placeVolume(request, {
          ...view,
          // The node asked to create it is where it is most likely attached: its replica serves reads there.
          preferredNode: this.cluster.nodeId,
          nodes: view.nodes.map((node) =>
            unreachable.has(node.id) ? { ...node, state: "down" as const } : node,
          ),
        }),
      );
      try {
        return await this.createPlaced(request, placement, fill, volumeId);
      } catch (error) {
        if (!(error instanceof NodeUnreachable)) throw error;
        this.cluster.log.warn(
          { volume: request.name, node: error.nodeId, err: error.cause },
          "placing again without an unreachable node",
        );
        unreachable.add(error.nodeId);
      }
    }
  }

  private async createPlaced(
    request: CreateVolume,
    placement: { nodes: string[]; warnings: string[] },
    fill: FillReplicas | undefined,
    volumeId: string,
  ): Promise<Provisioned> {
    const { log, store } = this.cluster;
    for (const warning of placement.warnings) log.warn({ volume: request.name }, warning);
    const nodes = await this.cluster.nodes();
    const replicas = placement.nodes.map((node) => ({
      replicaId: randomUUID(),
      node,
      state: "in-sync" as const,
    }));
    const made: typeof replicas = [];
    try {
      for (const replica of replicas) {
        const spec = {
          volumeId,
          replicaId: replica.replicaId,
          sizeBytes: request.sizeBytes,
          epoch: FIRST_EPOCH,
        };
        await this.cluster.createReplica(nodes.get(replica.node)!, spec).catch((error: unknown) => {
          throw error instanceof ReplicaUnavailableError ? new NodeUnreachable(replica.node, error) : error;
        });
        made.push(replica);
      }
      if (fill !== undefined) await this.fillReplicas(volumeId, made, nodes, fill);
      const record = await store.volumes.create({
        id: volumeId,
        name: request.name,
        sizeBytes: request.sizeBytes,
        replicationFactor: request.replicationFactor,
        labels: request.labels,
        nodeSelector: request.nodeSelector,
        replicas,
      });
      log.info({ volume: request.name, replicas: placement.nodes }, "volume created");
      return { record, warnings: placement.warnings };
    } catch (error) {
      await Promise.allSettled(
        made.map((r) => this.cluster.destroyReplica(nodes.get(r.node)!, volumeId, r.replicaId)),
      );
      if (error instanceof RecordExistsError) throw alreadyExists(request.name);
      throw error;
    }
  }

  /** Runs `fill` on handles to the new replicas (at their first epoch), then flushes them. */
  private async fillReplicas(
    volumeId: string,
    replicas: readonly { node: string }[],
    nodes: Map<string, NodeRecord>,
    fill: FillReplicas,
  ): Promise<void> {
    const handles: ReplicaHandle[] = [];
    try {
      for (const replica of replicas)
        handles.push(await this.cluster.handleOn(replica.node, volumeId, nodes));
      await fill(handles);
      await Promise.all(handles.map((handle) => handle.flush(FIRST_EPOCH)));
    } finally {
      await Promise.allSettled(handles.map((handle) => handle.close()));
    }
  }
}

/** Copies a snapshot's data into empty replicas, chunk by chunk, a few chunks at a time. */
export async function copyInto(source: SnapshotReader, targets: readonly ReplicaHandle[]): Promise<void> {
  const chunks = chunksOf(source.runs, DEFAULT_CHUNK_BYTES);
  let next = 0;
  const worker = async () => {
    while (next < chunks.length) {
      const { offset, length } = chunks[next++]!;
      const data = await source.read(offset, length);
      await Promise.all(targets.map((target) => target.write(FIRST_EPOCH, offset, data, { fua: false })));
    }
  };
  await Promise.all(Array.from({ length: DEFAULT_COPY_CONCURRENCY }, worker));
}

function alreadyExists(name: string): StrataError {
  return new StrataError("ALREADY_EXISTS", `volume "${name}" already exists`);
}

/** Creating a replica failed because its node could not be reached: place without it. */
class NodeUnreachable extends Error {
  constructor(
    readonly nodeId: string,
    cause: unknown,
  ) {
    super(`node ${nodeId} could not be reached`, { cause });
  }
}
