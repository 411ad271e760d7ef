import type { NodeRecord } from "../../core/state/records.js";

export const GiB = 1024 ** 3;

/** A registered, healthy node; tests override what they are about. */
export function nodeRecord(id: string, overrides: Partial<NodeRecord> = {}): NodeRecord {
  return {
    id,
    zone: "a",
    addresses: { api: `http://${id}:9500`, replication: `${id}:9600`, nbd: `${id}:10809` },
    pool: { capacityBytes: 100 * GiB, freeBytes: 100 * GiB },
    labels: {},
    state: "up",
    lastHeartbeat: "2030-01-01T00:00:00.000Z",
    ...overrides,
  };
}
