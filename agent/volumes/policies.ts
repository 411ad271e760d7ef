import type {
  AssignPolicyRequest,
  NewSchedulePolicy,
  PolicyAssignment,
  PolicyService,
  SchedulePolicy,
} from "../../core/schedule-policies.js";
import type { StateStore } from "../../core/state/store.js";

/**
 * Cloudsnap schedule policies and their assignments, straight from the state table: no node takes
 * part (the cloudsnap workflow reads the same records), so any agent serves them.
 */
export class StorePolicies implements PolicyService {
  constructor(private readonly store: StateStore) {}

  listPolicies(): Promise<SchedulePolicy[]> {
    return this.store.policies.list();
  }

  getPolicy(name: string): Promise<SchedulePolicy> {
    return this.store.policies.get(name);
  }

  createPolicy(policy: NewSchedulePolicy): Promise<SchedulePolicy> {
    return this.store.policies.create(policy);
  }

  deletePolicy(name: string): Promise<void> {
    return this.store.policies.delete(name);
  }

  listAssignments(): Promise<PolicyAssignment[]> {
    return this.store.policies.assignments();
  }

  async assignPolicy(volume: string, request: AssignPolicyRequest): Promise<PolicyAssignment> {
    const { id, name } = await this.store.volumes.getByName(volume);
    return this.store.policies.assign({ volumeId: id, volumeName: name, ...request });
  }

  async unassignPolicy(volume: string): Promise<void> {
    await this.store.policies.unassign((await this.store.volumes.getByName(volume)).id);
  }
}
