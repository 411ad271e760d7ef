/**
 * One epoch fence per replica object, shared by everything that mutates it: the replica server's
 * connections and a coordinator on the same node writing to its local replica directly. With a
 * fence per path, a SET_EPOCH arriving over the network would not wait for (or stop) a local
 * write carrying the old epoch, and a fenced coordinator could still change its local replica.
 */
import { type ServedReplica, ServedReplicaEntry } from "./served-replica.js";

// Keyed by the Replica object: a replica closed and reopened is a new object with the epoch it persisted.
const entries = new WeakMap<ServedReplica, ServedReplicaEntry>();

export function servedEntry(replica: ServedReplica): ServedReplicaEntry {
  let entry = entries.get(replica);
  if (entry === undefined) {
    entry = new ServedReplicaEntry(replica);
    entries.set(replica, entry);
  }
  return entry;
}
