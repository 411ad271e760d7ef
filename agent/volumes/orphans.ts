import { RecordNotFoundError } from "../../core/state/errors.js";
import type { ClusterContext } from "./cluster-context.js";

/** How often this node looks for orphaned replicas (more often when the grace is shorter). */
const ORPHAN_SWEEP_MS = 60_000;

/**
 * Deletes this node's replicas that no volume record has listed for the grace period: what a
 * delete, replacement or drop could not remove while this node was away. A replica exists before
 * its record lists it (a create or an added replica is recorded last), hence the grace.
 */
export class OrphanSweeper {
  private readonly timer: NodeJS.Timeout;
  /** Replica id → when the sweep first found no record listing it. */
  private readonly orphanSince = new Map<string, number>();
  private sweeping = false;

  constructor(private readonly cluster: ClusterContext) {
    this.timer = setInterval(
      () => this.sweep(),
      Math.min(ORPHAN_SWEEP_MS, Math.ceil(cluster.timing.orphanGraceMs / 3)),
    );
    this.timer.unref();
  }

  private sweep(): void {
    if (this.sweeping) return;
    this.sweeping = true;
    const { store, local, timing, log } = this.cluster;
    void (async () => {
      const now = Date.now();
      const seen = new Set<string>();
      for (const replica of local.list()) {
        const record = await store.volumes.get(replica.volumeId).catch((error: unknown) => {
          if (error instanceof RecordNotFoundError) return undefined;
          throw error;
        });
        if (record?.replicas.some((listed) => listed.replicaId === replica.replicaId)) continue;
        seen.add(replica.replicaId);
        const since = this.orphanSince.get(replica.replicaId) ?? now;
        this.orphanSince.set(replica.replicaId, since);
        if (now - since < timing.orphanGraceMs) continue;
        await local.deleteReplica(replica.volumeId, replica.replicaId);
        log.warn(
          { volumeId: replica.volumeId, replica: replica.replicaId, unlistedForMs: now - since },
          "deleted a replica no volume lists any more",
        );
      }
      for (const id of this.orphanSince.keys()) if (!seen.has(id)) this.orphanSince.delete(id);
    })()
      .catch((error: unknown) => log.warn({ err: error }, "looking for orphaned replicas failed"))
      .finally(() => {
        this.sweeping = false;
      });
  }

  close(): void {
    clearInterval(this.timer);
  }
}
