import { DescribeAvailabilityZonesCommand } from "@aws-sdk/client-ec2";
import { DescribeExecutionCommand, ExecutionAlreadyExists, StartExecutionCommand } from "@aws-sdk/client-sfn";
import { completeLifecycle } from "../complete-lifecycle/complete.js";
import type { AwsClients } from "../shared/clients.js";
import { RefusedError } from "../shared/errors.js";
import { executionArn, stateMachineArn } from "../shared/settings.js";
import type { IntakeDependencies } from "./intake.js";

/** Event intake's lookups and starts, through the state table, EC2 and Step Functions. */
export function intakeDependencies({
  store,
  ec2,
  sfn,
  autoScaling,
  settings,
}: AwsClients): IntakeDependencies {
  return {
    async nodeByInstance(instanceId) {
      return (await store.nodes.list()).find((node) => node.instanceId === instanceId);
    },
    async node(nodeId) {
      return (await store.nodes.list()).find((node) => node.id === nodeId);
    },
    async zoneAvailable(zone) {
      return !(await store.zones.unavailable()).has(zone);
    },
    async zoneName(zoneId) {
      const { AvailabilityZones } = await ec2.send(
        new DescribeAvailabilityZonesCommand({ ZoneIds: [zoneId] }),
      );
      const name = AvailabilityZones?.[0]?.ZoneName;
      if (name === undefined)
        throw new RefusedError(`zone id ${zoneId} names no availability zone of this region`);
      return name;
    },
    async start({ workflow, name, input }) {
      try {
        await sfn.send(
          new StartExecutionCommand({
            stateMachineArn: stateMachineArn(settings, workflow),
            name,
            input: JSON.stringify(input),
          }),
        );
        return "started";
      } catch (error) {
        if (error instanceof ExecutionAlreadyExists) return "duplicate";
        throw error;
      }
    },
    async execution(workflow, name) {
      const { status, input } = await sfn.send(
        new DescribeExecutionCommand({
          executionArn: executionArn(stateMachineArn(settings, workflow), name),
        }),
      );
      return { status: status ?? "RUNNING", input: JSON.parse(input ?? "{}") };
    },
    async completeLifecycle(lifecycle, instanceId) {
      await completeLifecycle({ lifecycle, instanceId }, autoScaling);
    },
  };
}
