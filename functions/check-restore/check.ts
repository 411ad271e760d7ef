import { z } from "zod";
import { volumeOfCloudsnap } from "../../core/cloud/cloudsnap-layout.js";
import { RestoreRequest } from "../../core/cloudsnaps.js";
import { RecordNotFoundError } from "../../core/state/errors.js";
import type { CloudsnapCatalogs } from "../shared/cloudsnap-catalogs.js";
import type { ClusterAccess } from "../shared/cluster.js";
import { RefusedError } from "../shared/errors.js";
import { liveNodeFor } from "../shared/nodes.js";
import { requestToken } from "../shared/request-tokens.js";

export const CheckRestoreInput = z.object({ execution: z.string().min(1), request: RestoreRequest });
export type CheckRestoreInput = z.infer<typeof CheckRestoreInput>;

export interface CheckedRestore {
  operation: {
    kind: "restore";
    volume: string;
    node: string;
    requestToken: string;
    params: Omit<RestoreRequest, "volume">;
  };
}

/**
 * Refuses, before anything is made, a restore that cannot succeed: a malformed id, a cloudsnap the
 * bucket does not list, a name in use, no live node. What it answers is the restore operation to
 * start, named by the execution so that a retried start finds it.
 */
export async function checkRestore(
  input: CheckRestoreInput,
  cluster: ClusterAccess,
  catalogs: CloudsnapCatalogs,
): Promise<CheckedRestore> {
  const { request } = input;
  let volumeId: string;
  try {
    volumeId = volumeOfCloudsnap(request.cloudsnap);
  } catch (error) {
    throw new RefusedError((error as Error).message);
  }
  if (!(await catalogs(volumeId)).some((cloudsnap) => cloudsnap.id === request.cloudsnap)) {
    throw new RefusedError(
      `cloudsnap ${request.cloudsnap} is not in the bucket's catalog of volume ${volumeId}`,
    );
  }
  const taken = await cluster.store.volumes.getByName(request.volume).catch((error: unknown) => {
    if (error instanceof RecordNotFoundError) return undefined;
    throw error;
  });
  if (taken !== undefined) {
    throw new RefusedError(`volume "${request.volume}" already exists: restore into a new name`);
  }
  const node = liveNodeFor(await cluster.store.nodes.list(), cluster.liveness(), request.volume);
  if (node === undefined) throw new RefusedError("no node is live to run the restore");
  const { volume, ...params } = request;
  return {
    operation: {
      kind: "restore",
      volume,
      node,
      requestToken: requestToken("restore", input.execution),
      params,
    },
  };
}
