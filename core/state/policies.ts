import { DeleteCommand, PutCommand } from "@aws-sdk/lib-dynamodb";
import { conflict } from "../errors.js";
import { NewSchedulePolicy } from "../schedule-policies.js";
import { RecordExistsError, RecordNotFoundError } from "./errors.js";
import { POLICIES_PARTITION, POLICY_ASSIGNMENTS_PARTITION, policyAssignmentKey, policyKey } from "./keys.js";
import { PolicyAssignmentRecord, SchedulePolicyRecord } from "./records.js";
import { isConditionFailure, type StateTable, validateInput } from "./table-client.js";

export interface NewAssignment {
  volumeId: string;
  volumeName: string;
  policy: string;
  group?: string;
}

/**
 * Cloudsnap schedule policies and which volume follows which. A policy is written once (to change
 * one, delete it and create it again: a schedule changed under the volumes following it would
 * change what retention keeps without anyone seeing it). A volume has at most one assignment.
 *
 * Without transactions, an assignment and a deletion of its policy can cross; the workflow skips an
 * assignment whose policy is gone, and `policy delete` refuses while it sees one.
 */
export class PolicyStore {
  constructor(private readonly table: StateTable) {}

  /** The one place a policy is checked: the API hands the request body here as it came. */
  async create(request: NewSchedulePolicy): Promise<SchedulePolicyRecord> {
    const policy = {
      ...validateInput(NewSchedulePolicy, request, "schedule policy"),
      createdAt: this.table.now(),
    };
    try {
      await this.table.doc.send(
        new PutCommand({
          TableName: this.table.tableName,
          Item: { ...policyKey(policy.name), ...policy },
          ConditionExpression: "attribute_not_exists(pk)",
        }),
      );
    } catch (error) {
      if (isConditionFailure(error)) throw new RecordExistsError(`policy "${policy.name}"`);
      throw error;
    }
    return policy;
  }

  async get(name: string): Promise<SchedulePolicyRecord> {
    const policy = await this.table.get(policyKey(name), SchedulePolicyRecord, "policy");
    if (policy === undefined) throw new RecordNotFoundError(`policy "${name}"`);
    return policy;
  }

  list(): Promise<SchedulePolicyRecord[]> {
    return this.table.queryPartition(POLICIES_PARTITION, SchedulePolicyRecord, "policy");
  }

  /** Refused while a volume follows the policy: its scheduled cloudsnaps would stop unnoticed. */
  async delete(name: string): Promise<void> {
    const followers = (await this.assignments()).filter((assignment) => assignment.policy === name);
    if (followers.length > 0) {
      const volumes = followers.map((assignment) => `"${assignment.volumeName}"`).join(", ");
      throw conflict(
        `policy "${name}" is assigned to volume(s) ${volumes}: give them another policy or none first`,
      );
    }
    try {
      await this.table.doc.send(
        new DeleteCommand({
          TableName: this.table.tableName,
          Key: policyKey(name),
          ConditionExpression: "attribute_exists(pk)",
        }),
      );
    } catch (error) {
      if (isConditionFailure(error)) throw new RecordNotFoundError(`policy "${name}"`);
      throw error;
    }
  }

  /** Gives the volume the policy (replacing the one it had); the policy must exist. */
  async assign(request: NewAssignment): Promise<PolicyAssignmentRecord> {
    await this.get(request.policy);
    const assignment = validateInput(
      PolicyAssignmentRecord,
      { ...request, assignedAt: this.table.now() },
      "policy assignment",
    );
    await this.table.doc.send(
      new PutCommand({
        TableName: this.table.tableName,
        Item: { ...policyAssignmentKey(assignment.volumeId), ...assignment },
      }),
    );
    return assignment;
  }

  /** The volume's assignment, or undefined when it follows no policy. */
  assignmentOf(volumeId: string): Promise<PolicyAssignmentRecord | undefined> {
    return this.table.get(policyAssignmentKey(volumeId), PolicyAssignmentRecord, "policy assignment");
  }

  /** Every volume with a policy: one Query, whatever the number of volumes without one. */
  assignments(): Promise<PolicyAssignmentRecord[]> {
    return this.table.queryPartition(
      POLICY_ASSIGNMENTS_PARTITION,
      PolicyAssignmentRecord,
      "policy assignment",
    );
  }

  /** Idempotent: the volume then follows no policy. */
  async unassign(volumeId: string): Promise<void> {
    await this.table.doc.send(
      new DeleteCommand({ TableName: this.table.tableName, Key: policyAssignmentKey(volumeId) }),
    );
  }
}
