import { z } from "zod";
import { Cloudsnap, type CloudsnapService } from "./cloudsnaps.js";
import { errorFromReply, StrataError } from "./errors.js";
import { Attachment, type Labels, NodeStatus, Snapshot, Volume } from "./model.js";
import { Operation, type OperationService, type StartOperation } from "./operations.js";
import {
  type AssignPolicyRequest,
  type NewSchedulePolicy,
  PolicyAssignment,
  type PolicyService,
  SchedulePolicy,
} from "./schedule-policies.js";
import type { CreateVolume, VolumeService } from "./volume-service.js";

const VolumeList = z.object({ volumes: z.array(Volume) });
const SnapshotList = z.object({ snapshots: z.array(Snapshot) });
const Health = z.object({ status: z.literal("ok") });
const OperationList = z.object({ operations: z.array(Operation) });
const CloudsnapList = z.object({ cloudsnaps: z.array(Cloudsnap) });
const PolicyList = z.object({ policies: z.array(SchedulePolicy) });
const AssignmentList = z.object({ assignments: z.array(PolicyAssignment) });

type Method = "GET" | "POST" | "PATCH" | "DELETE";

interface CallOptions {
  /** Sent as JSON. */
  body?: unknown;
  timeoutMs?: number;
}

/**
 * Status reads answer at once from a healthy agent; one that takes longer is wedged, and `cluster
 * status` should say so rather than hang. Mutations have no limit: the API is synchronous and a
 * clone or a snapshot merge takes as long as the data takes.
 */
const PROBE_TIMEOUT_MS = 10_000;

/**
 * The one HTTP client of the agent's control API, used by the CLI and by the local supervisor's
 * readiness probe. It speaks the VolumeService interface, so callers cannot tell it from the agent
 * in-process. Answers are validated with the same schemas the agent serves; every failure is a
 * StrataError: the agent's own refusal as it sent it, UNAVAILABLE when the agent cannot be reached.
 */
export class ControlClient implements VolumeService, OperationService, CloudsnapService, PolicyService {
  constructor(readonly baseUrl: string) {}

  async health(): Promise<void> {
    await this.call("GET", "/healthz", Health, { timeoutMs: PROBE_TIMEOUT_MS });
  }

  nodeStatus(): Promise<NodeStatus> {
    return this.call("GET", "/v1/node", NodeStatus, { timeoutMs: PROBE_TIMEOUT_MS });
  }

  async listVolumes(): Promise<Volume[]> {
    return (await this.call("GET", "/v1/volumes", VolumeList)).volumes;
  }

  getVolume(name: string): Promise<Volume> {
    return this.call("GET", volumePath(name), Volume);
  }

  createVolume(request: CreateVolume): Promise<Volume> {
    return this.call("POST", "/v1/volumes", Volume, { body: request });
  }

  updateReplication(name: string, replicationFactor: number): Promise<Volume> {
    return this.call("POST", `${volumePath(name)}/replication`, Volume, { body: { replicationFactor } });
  }

  resizeVolume(name: string, sizeBytes: number): Promise<Volume> {
    return this.call("PATCH", volumePath(name), Volume, { body: { sizeBytes } });
  }

  deleteVolume(name: string): Promise<void> {
    return this.call("DELETE", volumePath(name), undefined);
  }

  attachVolume(name: string): Promise<Attachment> {
    return this.call("POST", `${volumePath(name)}/attach`, Attachment, { body: {} });
  }

  detachVolume(name: string): Promise<void> {
    return this.call("POST", `${volumePath(name)}/detach`, undefined, { body: {} });
  }

  async listSnapshots(volume: string): Promise<Snapshot[]> {
    return (await this.call("GET", snapshotsPath(volume), SnapshotList)).snapshots;
  }

  createSnapshot(volume: string, name?: string): Promise<Snapshot> {
    return this.call("POST", snapshotsPath(volume), Snapshot, { body: name === undefined ? {} : { name } });
  }

  deleteSnapshot(volume: string, snapshot: string): Promise<void> {
    return this.call("DELETE", snapshotPath(volume, snapshot), undefined);
  }

  cloneSnapshot(volume: string, snapshot: string, target: string, labels: Labels): Promise<Volume> {
    return this.call("POST", `${snapshotPath(volume, snapshot)}/clone`, Volume, { body: { target, labels } });
  }

  revertVolume(volume: string, snapshot: string): Promise<Volume> {
    return this.call("POST", `${volumePath(volume)}/revert`, Volume, { body: { snapshot } });
  }

  async listOperations(filter: { volume?: string } = {}): Promise<Operation[]> {
    const query = filter.volume === undefined ? "" : `?volume=${encodeURIComponent(filter.volume)}`;
    return (await this.call("GET", `/v1/operations${query}`, OperationList)).operations;
  }

  getOperation(id: string): Promise<Operation> {
    return this.call("GET", operationPath(id), Operation);
  }

  startOperation(request: StartOperation): Promise<Operation> {
    return this.call("POST", "/v1/operations", Operation, { body: request });
  }

  cancelOperation(id: string): Promise<Operation> {
    return this.call("POST", `${operationPath(id)}/cancel`, Operation, { body: {} });
  }

  async listCloudsnaps(volume: string): Promise<Cloudsnap[]> {
    return (await this.call("GET", `${volumePath(volume)}/cloudsnaps`, CloudsnapList)).cloudsnaps;
  }

  getCloudsnap(id: string): Promise<Cloudsnap> {
    return this.call("GET", cloudsnapPath(id), Cloudsnap);
  }

  deleteCloudsnap(id: string): Promise<Cloudsnap> {
    return this.call("DELETE", cloudsnapPath(id), Cloudsnap);
  }

  async listPolicies(): Promise<SchedulePolicy[]> {
    return (await this.call("GET", "/v1/policies", PolicyList)).policies;
  }

  getPolicy(name: string): Promise<SchedulePolicy> {
    return this.call("GET", policyPath(name), SchedulePolicy);
  }

  createPolicy(policy: NewSchedulePolicy): Promise<SchedulePolicy> {
    return this.call("POST", "/v1/policies", SchedulePolicy, { body: policy });
  }

  deletePolicy(name: string): Promise<void> {
    return this.call("DELETE", policyPath(name), undefined);
  }

  async listAssignments(): Promise<PolicyAssignment[]> {
    return (await this.call("GET", "/v1/policy-assignments", AssignmentList)).assignments;
  }

  assignPolicy(volume: string, request: AssignPolicyRequest): Promise<PolicyAssignment> {
    return this.call("POST", `${volumePath(volume)}/policy`, PolicyAssignment, { body: request });
  }

  unassignPolicy(volume: string): Promise<void> {
    return this.call("DELETE", `${volumePath(volume)}/policy`, undefined);
  }

  /** Sends one request; `schema` undefined means the answer has no body (204). */
  private async call<S extends z.ZodType>(
    method: Method,
    path: string,
    schema: S,
    options?: CallOptions,
  ): Promise<z.output<S>>;
  private async call(method: Method, path: string, schema: undefined, options?: CallOptions): Promise<void>;
  private async call(method: Method, path: string, schema: z.ZodType | undefined, options: CallOptions = {}) {
    const { body, timeoutMs } = options;
    let response: Response;
    let text: string;
    try {
      response = await fetch(`${this.baseUrl}${path}`, {
        method,
        ...(body === undefined
          ? {}
          : { headers: { "content-type": "application/json" }, body: JSON.stringify(body) }),
        ...(timeoutMs === undefined ? {} : { signal: AbortSignal.timeout(timeoutMs) }),
      });
      text = await response.text();
    } catch (error) {
      if ((error as Error).name === "TimeoutError") {
        throw new StrataError(
          "UNAVAILABLE",
          `the Strata agent at ${this.baseUrl} did not answer within ${(timeoutMs ?? 0) / 1000} s`,
        );
      }
      // fetch only throws for transport failures (refused, reset, DNS): the agent is not there.
      throw new StrataError(
        "UNAVAILABLE",
        `cannot reach the Strata agent at ${this.baseUrl}: is it running (locally, \`strata cluster up\`), and is its API port open to you?`,
      );
    }
    if (!response.ok) {
      throw errorFromReply(
        parseJson(text),
        `the agent at ${this.baseUrl} answered ${method} ${path} with HTTP ${response.status}`,
      );
    }
    if (schema === undefined) return undefined;
    const parsed = schema.safeParse(parseJson(text));
    if (!parsed.success) {
      throw new StrataError(
        "INTERNAL",
        `the agent at ${this.baseUrl} sent an unexpected answer to ${method} ${path}`,
      );
    }
    return parsed.data;
  }
}

const volumePath = (name: string) => `/v1/volumes/${encodeURIComponent(name)}`;
const snapshotsPath = (volume: string) => `${volumePath(volume)}/snapshots`;
const snapshotPath = (volume: string, snapshot: string) =>
  `${snapshotsPath(volume)}/${encodeURIComponent(snapshot)}`;

const operationPath = (id: string) => `/v1/operations/${encodeURIComponent(id)}`;
const cloudsnapPath = (id: string) => `/v1/cloudsnaps/${encodeURIComponent(id)}`;
const policyPath = (name: string) => `/v1/policies/${encodeURIComponent(name)}`;

/** The body as JSON, or undefined when it is not JSON (an error page from something else). */
export function parseJson(text: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return undefined;
  }
}
