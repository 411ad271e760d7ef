import type { SnapshotInfo } from "../../store/replica.js";
import type { SnapshotRequest } from "../replica-handle.js";
import type { VolumeCoordinator } from "./coordinator.js";

/**
 * Snapshots several volumes at one point of their write streams: every volume's I/O is held (in
 * the order of their ids, so two groups sharing volumes never wait on each other in a circle),
 * then each is snapshotted, then all resume. A write acknowledged on one volume before the point
 * is in every snapshot; one that started after it is in none: what a database spreading its data
 * and its log over two volumes needs to restart from them. I/O waits for the whole group, a few
 * milliseconds per volume.
 */
export function snapshotTogether(
  members: readonly { coordinator: VolumeCoordinator; request: SnapshotRequest }[],
): Promise<SnapshotInfo[]> {
  const ordered = [...members].sort((a, b) => a.coordinator.volumeId.localeCompare(b.coordinator.volumeId));
  type TakeHeld = (request: SnapshotRequest) => Promise<SnapshotInfo>;
  // Each level holds one more volume; the innermost, with every volume held, takes the snapshots.
  const holdFrom = (index: number, held: TakeHeld[]): Promise<SnapshotInfo[]> =>
    index === ordered.length
      ? Promise.all(ordered.map(({ request }, i) => held[i]!(request)))
      : ordered[index]!.coordinator.holdForSnapshots((take) => holdFrom(index + 1, [...held, take]));
  return holdFrom(0, []).then((taken) =>
    members.map(
      ({ coordinator }) => taken[ordered.findIndex((member) => member.coordinator === coordinator)]!,
    ),
  );
}
