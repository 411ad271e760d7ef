import { PutCommand } from "@aws-sdk/lib-dynamodb";
import { HEALTH_PARTITION, healthKey } from "./keys.js";
import { HealthVerdict } from "./records.js";
import { isConditionFailure, type StateTable, validateInput } from "./table-client.js";

export const healthSubject = {
  node: (nodeId: string) => `NODE#${nodeId}`,
  zone: (zone: string) => `ZONE#${zone}`,
};

/** When each node was found offline, by the verdicts given; undefined for a node that is not. */
export function offlineSince(verdicts: readonly HealthVerdict[]): (nodeId: string) => string | undefined {
  const offline = new Map(
    verdicts.flatMap((verdict) => (verdict.offline ? [[verdict.subject, verdict.since] as const] : [])),
  );
  return (nodeId) => offline.get(healthSubject.node(nodeId));
}

/** The health sweep's verdicts (see HealthVerdict). */
export class HealthStore {
  constructor(private readonly table: StateTable) {}

  /**
   * Records `offline` for `subject` if it differs from the verdict stored; true when this call made
   * the change (conditional: of two sweeps recording one change, one makes it). `observedAt` is when
   * the verdict was reached: a zone's verdict is judged again against its `since`, which must be the
   * clock the first judgement used, not the later moment the write happened to land.
   */
  async change(
    subject: string,
    offline: boolean,
    reason: string,
    observedAt: string = this.table.now(),
  ): Promise<boolean> {
    const verdict = validateInput(
      HealthVerdict,
      { subject, offline, reason, since: observedAt },
      "health verdict",
    );
    try {
      await this.table.doc.send(
        new PutCommand({
          TableName: this.table.tableName,
          Item: { ...healthKey(subject), ...verdict },
          // "offline" is one of DynamoDB's reserved words: named through a placeholder.
          ConditionExpression: "attribute_not_exists(pk) OR #offline <> :offline",
          ExpressionAttributeNames: { "#offline": "offline" },
          ExpressionAttributeValues: { ":offline": offline },
        }),
      );
      return true;
    } catch (error) {
      if (isConditionFailure(error)) return false;
      throw error;
    }
  }

  list(): Promise<HealthVerdict[]> {
    return this.table.queryPartition(HEALTH_PARTITION, HealthVerdict, "health verdict");
  }
}
