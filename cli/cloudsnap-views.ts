import type { Cloudsnap } from "../core/cloudsnaps.js";
import { formatAge, formatSize } from "./format.js";
import { type Cell, formatDetails, formatTable } from "./output.js";

/** A volume's cloudsnaps, oldest first: what each holds and what it cost to upload. */
export function cloudsnapTable(cloudsnaps: readonly Cloudsnap[], now = Date.now()): string {
  return formatTable(
    ["id", "volume", "size", "data", "uploaded", "chunks (new)", "kind", "group", "age"],
    cloudsnaps.map((cloudsnap) => [
      cloudsnap.id,
      cloudsnap.volumeName,
      formatSize(cloudsnap.sizeBytes),
      formatSize(cloudsnap.dataBytes),
      formatSize(cloudsnap.uploadedBytes),
      `${cloudsnap.chunks} (${cloudsnap.newChunks})`,
      cloudsnap.incremental ? "incremental" : "full",
      cloudsnap.group ?? "-",
      formatAge(cloudsnap.createdAt, now),
    ]),
  );
}

export function cloudsnapDescription(cloudsnap: Cloudsnap, now = Date.now()): string {
  const fields: [string, Cell][] = [
    ["ID", cloudsnap.id],
    ["Volume", `${cloudsnap.volumeName} (${cloudsnap.id.slice(0, 36)})`],
    ["Created", `${cloudsnap.createdAt} (${formatAge(cloudsnap.createdAt, now)} ago)`],
    ["Size", `${formatSize(cloudsnap.sizeBytes)} (${cloudsnap.sizeBytes} bytes)`],
    ["Replication", `${cloudsnap.replicationFactor} (a restore's default)`],
    ["Data", `${formatSize(cloudsnap.dataBytes)} in ${cloudsnap.chunks} chunks`],
    [
      "Read",
      `${formatSize(cloudsnap.scannedBytes)} (${cloudsnap.incremental ? "changed since the previous cloudsnap" : "all data"})`,
    ],
    ["Uploaded", `${formatSize(cloudsnap.uploadedBytes)} in ${cloudsnap.newChunks} new chunks`],
    ["Snapshot", cloudsnap.snapshotId],
  ];
  if (cloudsnap.group !== undefined) fields.push(["Group", cloudsnap.group]);
  return formatDetails(fields);
}
