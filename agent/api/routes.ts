import { z } from "zod";
import type { CloudsnapService } from "../../core/cloudsnaps.js";
import {
  CloneSnapshotRequest,
  CreateSnapshotRequest,
  CreateVolumeRequest,
  ResizeVolumeRequest,
  ResourceName,
  RevertVolumeRequest,
  UpdateReplicationRequest,
} from "../../core/model.js";
import { type OperationService, StartOperationRequest } from "../../core/operations.js";
import {
  AssignPolicyRequest,
  type NewSchedulePolicy,
  type PolicyService,
} from "../../core/schedule-policies.js";
import type { VolumeService } from "../../core/volume-service.js";
import { registry } from "../metrics.js";
import { badRequest } from "./faults.js";
import { parseWith } from "./request-body.js";
import type { Reply, Route, RouteContext } from "./router.js";

/** Attach and detach take no fields; a body, if sent, must be empty so typos are not silently ignored. */
const NoFields = z.strictObject({});

/**
 * The control API: one entry per operation of the VolumeService and of the OperationService, plus
 * the probe and the scrape.
 */
export function controlRoutes(
  service: VolumeService,
  operations?: OperationService,
  cloudsnaps?: CloudsnapService,
  policies?: PolicyService,
): Route[] {
  return [
    {
      method: "GET",
      pattern: "/healthz",
      quiet: true,
      handle: async () => ok({ status: "ok" }),
    },
    {
      method: "GET",
      pattern: "/metrics",
      quiet: true,
      handle: async () => ({
        status: 200,
        raw: { contentType: registry.contentType, text: await registry.metrics() },
      }),
    },
    { method: "GET", pattern: "/v1/node", handle: async () => ok(await service.nodeStatus()) },

    {
      method: "GET",
      pattern: "/v1/volumes",
      handle: async () => ok({ volumes: await service.listVolumes() }),
    },
    {
      method: "POST",
      pattern: "/v1/volumes",
      handle: async (context) => {
        const request = parseWith(CreateVolumeRequest, await context.body());
        return created(await service.createVolume(request));
      },
    },
    {
      method: "GET",
      pattern: "/v1/volumes/:name",
      handle: async (context) => ok(await service.getVolume(volumeParam(context))),
    },
    {
      method: "PATCH",
      pattern: "/v1/volumes/:name",
      handle: async (context) => {
        const volume = volumeParam(context);
        const { sizeBytes } = parseWith(ResizeVolumeRequest, await context.body());
        return ok(await service.resizeVolume(volume, sizeBytes));
      },
    },
    {
      method: "DELETE",
      pattern: "/v1/volumes/:name",
      handle: async (context) => {
        await service.deleteVolume(volumeParam(context));
        return noContent();
      },
    },
    {
      method: "POST",
      pattern: "/v1/volumes/:name/attach",
      handle: async (context) => {
        const volume = volumeParam(context);
        parseWith(NoFields, await context.body());
        return ok(await service.attachVolume(volume));
      },
    },
    {
      method: "POST",
      pattern: "/v1/volumes/:name/detach",
      handle: async (context) => {
        const volume = volumeParam(context);
        parseWith(NoFields, await context.body());
        await service.detachVolume(volume);
        return noContent();
      },
    },
    {
      method: "POST",
      pattern: "/v1/volumes/:name/replication",
      handle: async (context) => {
        const volume = volumeParam(context);
        const { replicationFactor } = parseWith(UpdateReplicationRequest, await context.body());
        return ok(await service.updateReplication(volume, replicationFactor));
      },
    },
    {
      method: "POST",
      pattern: "/v1/volumes/:name/revert",
      handle: async (context) => {
        const volume = volumeParam(context);
        const { snapshot } = parseWith(RevertVolumeRequest, await context.body());
        return ok(await service.revertVolume(volume, snapshot));
      },
    },

    {
      method: "GET",
      pattern: "/v1/volumes/:name/snapshots",
      handle: async (context) => ok({ snapshots: await service.listSnapshots(volumeParam(context)) }),
    },
    {
      method: "POST",
      pattern: "/v1/volumes/:name/snapshots",
      handle: async (context) => {
        const volume = volumeParam(context);
        const { name } = parseWith(CreateSnapshotRequest, await context.body());
        return created(await service.createSnapshot(volume, name));
      },
    },
    {
      method: "DELETE",
      pattern: "/v1/volumes/:name/snapshots/:snapshot",
      handle: async (context) => {
        await service.deleteSnapshot(volumeParam(context), snapshotParam(context));
        return noContent();
      },
    },
    {
      method: "POST",
      pattern: "/v1/volumes/:name/snapshots/:snapshot/clone",
      handle: async (context) => {
        const [volume, snapshot] = [volumeParam(context), snapshotParam(context)];
        const { target, labels } = parseWith(CloneSnapshotRequest, await context.body());
        return created(await service.cloneSnapshot(volume, snapshot, target, labels));
      },
    },
    ...(operations === undefined ? [] : operationRoutes(operations)),
    ...(cloudsnaps === undefined ? [] : cloudsnapRoutes(cloudsnaps)),
    ...(policies === undefined ? [] : policyRoutes(policies)),
  ];
}

/** Cloudsnap schedule policies, and the one each volume follows. */
function policyRoutes(policies: PolicyService): Route[] {
  return [
    {
      method: "GET",
      pattern: "/v1/policies",
      handle: async () => ok({ policies: await policies.listPolicies() }),
    },
    {
      method: "POST",
      pattern: "/v1/policies",
      handle: async (context) => created(await policies.createPolicy(policyBody(await context.body()))),
    },
    {
      method: "GET",
      pattern: "/v1/policies/:policy",
      handle: async (context) => ok(await policies.getPolicy(policyParam(context))),
    },
    {
      method: "DELETE",
      pattern: "/v1/policies/:policy",
      handle: async (context) => {
        await policies.deletePolicy(policyParam(context));
        return noContent();
      },
    },
    {
      method: "GET",
      pattern: "/v1/policy-assignments",
      handle: async () => ok({ assignments: await policies.listAssignments() }),
    },
    {
      method: "POST",
      pattern: "/v1/volumes/:name/policy",
      handle: async (context) => {
        const volume = volumeParam(context);
        const request = parseWith(AssignPolicyRequest, await context.body());
        return ok(await policies.assignPolicy(volume, request));
      },
    },
    {
      method: "DELETE",
      pattern: "/v1/volumes/:name/policy",
      handle: async (context) => {
        await policies.unassignPolicy(volumeParam(context));
        return noContent();
      },
    },
  ];
}

/**
 * Handed on as it came: the policy store checks it (one sentence naming each wrong field), the one
 * place every way of creating a policy goes through.
 */
const policyBody = (body: unknown) => body as NewSchedulePolicy;

/** Cloudsnaps in the bucket; taking and restoring one are operations. */
function cloudsnapRoutes(cloudsnaps: CloudsnapService): Route[] {
  return [
    {
      method: "GET",
      pattern: "/v1/volumes/:name/cloudsnaps",
      handle: async (context) => ok({ cloudsnaps: await cloudsnaps.listCloudsnaps(volumeParam(context)) }),
    },
    {
      method: "GET",
      pattern: "/v1/cloudsnaps/:id",
      handle: async (context) => ok(await cloudsnaps.getCloudsnap(cloudsnapParam(context))),
    },
    {
      method: "DELETE",
      pattern: "/v1/cloudsnaps/:id",
      handle: async (context) => ok(await cloudsnaps.deleteCloudsnap(cloudsnapParam(context))),
    },
  ];
}

/** Long work, started and then observed (DESIGN.md, Operations). */
function operationRoutes(operations: OperationService): Route[] {
  return [
    {
      method: "GET",
      pattern: "/v1/operations",
      handle: async (context) => {
        const { volume } = parseWith(OperationFilter, Object.fromEntries(context.query), "invalid query");
        return ok({ operations: await operations.listOperations({ volume }) });
      },
    },
    {
      method: "POST",
      pattern: "/v1/operations",
      handle: async (context) => {
        const request = parseWith(StartOperationRequest, await context.body());
        return created(await operations.startOperation(request));
      },
    },
    {
      method: "GET",
      pattern: "/v1/operations/:id",
      handle: async (context) => ok(await operations.getOperation(operationParam(context))),
    },
    {
      method: "POST",
      pattern: "/v1/operations/:id/cancel",
      handle: async (context) => {
        const id = operationParam(context);
        parseWith(NoFields, await context.body());
        return ok(await operations.cancelOperation(id));
      },
    },
  ];
}

const OperationFilter = z.strictObject({ volume: ResourceName.optional() });
const OperationId = z.string().regex(/^[A-Za-z0-9_.-]{1,128}$/, "not an operation id");

const ok = (body: unknown): Reply => ({ status: 200, body });
const created = (body: unknown): Reply => ({ status: 201, body });
const noContent = (): Reply => ({ status: 204 });

const volumeParam = (context: RouteContext) => nameParam(context, "name", "volume");
const snapshotParam = (context: RouteContext) => nameParam(context, "snapshot", "snapshot");
const policyParam = (context: RouteContext) => nameParam(context, "policy", "policy");
/** Checked by the service, which says what a cloudsnap id looks like. */
const cloudsnapParam = (context: RouteContext) => context.params["id"] ?? "";
const operationParam = (context: RouteContext) =>
  parseWith(OperationId, context.params["id"], `invalid operation id "${context.params["id"]}"`);

/** Names in the path are checked like names in bodies, so the service never sees an impossible one. */
function nameParam(context: RouteContext, param: string, kind: string): string {
  const value = context.params[param] ?? "";
  const result = ResourceName.safeParse(value);
  if (!result.success)
    throw badRequest(`invalid ${kind} name "${value}": ${result.error.issues[0]?.message}`);
  return result.data;
}
