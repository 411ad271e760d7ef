import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from "prom-client";

export const registry = new Registry();
collectDefaultMetrics({ register: registry, prefix: "strata_agent_" });

export type IoOp = "read" | "write" | "write_zeroes" | "trim" | "flush";

const ioRequests = new Counter({
  name: "strata_volume_io_requests_total",
  help: "Block I/O requests served, by volume, operation and result",
  labelNames: ["volume", "op", "result"] as const,
  registers: [registry],
});

const ioBytes = new Counter({
  name: "strata_volume_io_bytes_total",
  help: "Bytes read or written by block I/O requests",
  labelNames: ["volume", "op"] as const,
  registers: [registry],
});

const ioLatency = new Histogram({
  name: "strata_volume_io_latency_seconds",
  help: "Latency of block I/O requests from receipt to reply",
  labelNames: ["op"] as const,
  // 50 µs to 5 s: local NVMe-class latencies up to the stalls replication failover may cause.
  buckets: [0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1, 5],
  registers: [registry],
});

export const nbdConnections = new Gauge({
  name: "strata_nbd_connections",
  help: "Open NBD client connections",
  registers: [registry],
});

export interface PoolGaugeSource {
  usage(): { capacityBytes: number; usedBytes: number; freeBytes: number; provisionedBytes: number };
  volumeCount(): number;
}

let poolSource: PoolGaugeSource | undefined;

/** Pool gauges are read when Prometheus scrapes, so they are never stale and cost nothing per write. */
export function setPoolGaugeSource(source: PoolGaugeSource): void {
  poolSource = source;
}

new Gauge({
  name: "strata_pool_bytes",
  help: "Storage pool space by kind: capacity, used, free, provisioned",
  labelNames: ["kind"] as const,
  registers: [registry],
  collect() {
    if (!poolSource) return;
    const usage = poolSource.usage();
    this.set({ kind: "capacity" }, usage.capacityBytes);
    this.set({ kind: "used" }, usage.usedBytes);
    this.set({ kind: "free" }, usage.freeBytes);
    this.set({ kind: "provisioned" }, usage.provisionedBytes);
  },
});

new Gauge({
  name: "strata_volumes",
  help: "Volumes held by this agent",
  registers: [registry],
  collect() {
    if (poolSource) this.set(poolSource.volumeCount());
  },
});

/** Records one finished request; `startedAt` is a process.hrtime.bigint() reading. */
export function observeIo(volume: string, op: IoOp, bytes: number, startedAt: bigint, ok: boolean): void {
  ioRequests.inc({ volume, op, result: ok ? "ok" : "error" });
  if (ok && bytes > 0) ioBytes.inc({ volume, op }, bytes);
  ioLatency.observe({ op }, Number(process.hrtime.bigint() - startedAt) / 1e9);
}
