/**
 * A node's identity is its drive set (DESIGN.md, Drive sets): the EBS volumes (locally, the local
 * cloud's file-backed ones) tagged with the cluster and the drive set's id, which is the node's id.
 * Whoever holds the drives serves the node's replicas, so the workflows find drives by these tags
 * and by volume id, never by device name (NVMe device names change from one attach to the next).
 */
export const DriveTag = {
  cluster: "strata:cluster",
  driveSet: "strata:drive-set",
} as const;

/** The tags EKS managed node groups put on their instances, by which a lost node's group is found. */
export const NodeGroupTag = {
  cluster: "eks:cluster-name",
  nodeGroup: "eks:nodegroup-name",
} as const;
