/** The coordinator's and rebuild's metrics, on the agent's registry. */
import { Counter, Gauge } from "prom-client";
import { registry } from "../../metrics.js";

export const replicaRemovals = new Counter({
  name: "strata_replica_removals_total",
  help: "Replicas a coordinator removed from a volume's set after they failed",
  labelNames: ["volume"] as const,
  registers: [registry],
});

export const rebuildProgress = new Gauge({
  name: "strata_rebuild_progress_ratio",
  help: "Fraction of the allocated data a running rebuild has copied (0..1)",
  labelNames: ["volume", "replica"] as const,
  registers: [registry],
});

export const copiedBytes = new Counter({
  name: "strata_replica_copied_bytes_total",
  help: "Bytes copied to rebuild targets (kind=rebuild: new replicas; kind=resync: returning ones)",
  labelNames: ["volume", "kind"] as const,
  registers: [registry],
});
