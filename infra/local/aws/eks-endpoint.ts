import type { AwsProtocolHandler } from "./http.js";
import type { LocalEc2, LocalNodegroup } from "./local-ec2.js";
import { RestJsonServiceError, restJsonProtocol } from "./rest-json-protocol.js";

/**
 * EKS on the wire (restJson1): the node groups of the local cluster, one per zone, each backed by
 * an Auto Scaling group, which is how the workflows find the group an instance belongs to and how
 * big it is meant to be.
 */
export function eksProtocol(world: LocalEc2): AwsProtocolHandler {
  return restJsonProtocol([
    {
      method: "GET",
      path: /^\/clusters\/([^/]+)\/node-groups$/,
      answer: ([cluster], query) => {
        requireCluster(world, cluster!);
        const maxResults = query.has("maxResults") ? Number(query.get("maxResults")) : 100;
        if (!Number.isInteger(maxResults) || maxResults < 1 || maxResults > 100)
          throw new RestJsonServiceError(
            "InvalidParameterException",
            "maxResults must be between 1 and 100",
            400,
            { clusterName: cluster! },
          );
        const names = world.nodegroups().map((group) => group.name);
        const token = query.get("nextToken");
        const start = token === null ? 0 : Number(Buffer.from(token, "base64url").toString("utf8"));
        if (!Number.isInteger(start) || start < 0 || start > names.length)
          throw new RestJsonServiceError("InvalidParameterException", "The nextToken is not valid", 400, {
            clusterName: cluster!,
          });
        const end = start + maxResults;
        return {
          nodegroups: names.slice(start, end),
          nextToken: end < names.length ? Buffer.from(String(end)).toString("base64url") : undefined,
        };
      },
    },
    {
      method: "GET",
      path: /^\/clusters\/([^/]+)\/node-groups\/([^/]+)$/,
      answer: ([cluster, name]) => {
        requireCluster(world, cluster!);
        const group = world.nodegroup(name!);
        if (!group)
          throw new RestJsonServiceError(
            "ResourceNotFoundException",
            `No node group found for name: ${name}.`,
            404,
            {
              clusterName: cluster!,
              nodegroupName: name!,
            },
          );
        return { nodegroup: nodegroupJson(world, group) };
      },
    },
  ]);
}

function requireCluster(world: LocalEc2, name: string) {
  if (name !== world.clusterName)
    throw new RestJsonServiceError("ResourceNotFoundException", `No cluster found for name: ${name}.`, 404, {
      clusterName: name,
    });
}

function nodegroupJson(world: LocalEc2, group: LocalNodegroup) {
  const desiredSize = world.nodegroupSize(group.name);
  return {
    nodegroupName: group.name,
    nodegroupArn: world.nodegroupArn(group),
    clusterName: world.clusterName,
    status: "ACTIVE",
    capacityType: "ON_DEMAND",
    scalingConfig: {
      minSize: group.minSize,
      maxSize: Math.max(group.maxSize, desiredSize),
      desiredSize,
    },
    subnets: [`subnet-${group.zone}`],
    resources: { autoScalingGroups: [{ name: group.autoScalingGroupName }] },
    labels: group.labels,
    tags: group.tags,
    createdAt: new Date(group.createdAt),
    modifiedAt: new Date(group.createdAt),
  };
}
