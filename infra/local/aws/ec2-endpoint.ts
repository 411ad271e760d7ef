import type { AwsProtocolHandler } from "./http.js";
import { LOCAL_ACCOUNT_ID, localRegion } from "./identity.js";
import {
  INSTANCE_STATE_CODES,
  type InstanceStateName,
  type LocalEc2,
  type LocalInstance,
  type LocalVolume,
  type VolumeAttachment,
  volumeStatus,
} from "./local-ec2.js";
import { ec2Dialect, type QueryFilter, type QueryParams, queryProtocol } from "./query-protocol.js";
import { AwsServiceError } from "./service-error.js";
import type { XmlObject } from "./xml.js";

/** The EC2 API version every current SDK sends, and the namespace of its XML. */
export const EC2_NAMESPACE = "http://ec2.amazonaws.com/doc/2016-11-15/";

/**
 * EC2 on the wire (the EC2 query protocol), answering the calls the workflows make from the local
 * cloud's own instances and drives: describe instances and volumes, move a volume, terminate, and
 * tag (an agent names its new drives).
 */
export function ec2Protocol(world: LocalEc2): AwsProtocolHandler {
  return queryProtocol(ec2Dialect(EC2_NAMESPACE), {
    DescribeInstances: (params) => describeInstances(world, params),
    DescribeVolumes: (params) => describeVolumes(world, params),
    DescribeAvailabilityZones: (params) => {
      const ids = params.list("ZoneId");
      const names = params.list("ZoneName");
      const zones = world
        .availabilityZones()
        .filter(
          (zone) =>
            (ids.length === 0 || ids.includes(zone.id)) && (names.length === 0 || names.includes(zone.name)),
        );
      const unknown = [...ids.filter((id) => !zones.some((zone) => zone.id === id))];
      if (unknown.length > 0)
        throw new AwsServiceError("InvalidParameterValue", `The zone ID '${unknown[0]}' is not valid`);
      return {
        availabilityZoneInfo: zones.map((zone) => ({
          zoneName: zone.name,
          zoneId: zone.id,
          zoneState: "available",
          regionName: localRegion(),
          zoneType: "availability-zone",
        })),
      };
    },
    AttachVolume: (params) =>
      attachmentXml(
        world.attachVolume({
          volumeId: params.required("VolumeId"),
          instanceId: params.required("InstanceId"),
          device: params.required("Device"),
        }),
        params.required("VolumeId"),
        "attaching",
      ),
    DetachVolume: (params) => {
      const volumeId = params.required("VolumeId");
      const instanceId = params.string("InstanceId");
      const device = params.string("Device");
      // Force is accepted and needs no handling: it only matters to a real instance's operating
      // system, and a local drive detaches at once anyway.
      return attachmentXml(
        world.detachVolume({
          volumeId,
          ...(instanceId ? { instanceId } : {}),
          ...(device ? { device } : {}),
        }),
        volumeId,
        "detaching",
      );
    },
    CreateTags: (params) => {
      const ids = params.list("ResourceId");
      const tags = params.tags("Tag");
      if (ids.length === 0)
        throw new AwsServiceError("MissingParameter", "The request must contain the parameter resourceIdSet");
      if (Object.keys(tags).length === 0)
        throw new AwsServiceError("MissingParameter", "The request must contain the parameter tagSet");
      world.createTags(ids, tags);
      return { return: true };
    },
    TerminateInstances: (params) => {
      const ids = params.list("InstanceId");
      if (ids.length === 0)
        throw new AwsServiceError("MissingParameter", "The request must contain the parameter InstanceId");
      requireInstances(world, ids);
      return {
        instancesSet: ids.map((id) => {
          const { previous, current } = world.terminateNow(id);
          return { instanceId: id, currentState: stateXml(current), previousState: stateXml(previous) };
        }),
      };
    },
  });
}

function describeInstances(world: LocalEc2, params: QueryParams): XmlObject {
  const ids = params.list("InstanceId");
  for (const id of ids)
    if (!/^i-[0-9a-f]{8,17}$/.test(id))
      throw new AwsServiceError("InvalidInstanceID.Malformed", `Invalid id: "${id}" (expecting "i-...")`);
  requireInstances(world, ids);
  const chosen = world
    .instances()
    .filter((i) => ids.length === 0 || ids.includes(i.id))
    .filter((i) => matchesAll(params.filters(), (name) => instanceField(i, name)));
  const { page, nextToken } = paginate(chosen, params, ids.length > 0 && "instanceIds", 1000);
  return {
    reservationSet: page.map((instance) => ({
      reservationId: `r-${instance.id.slice(2)}`,
      ownerId: LOCAL_ACCOUNT_ID,
      groupSet: [],
      instancesSet: [instanceXml(world, instance)],
    })),
    nextToken,
  };
}

function describeVolumes(world: LocalEc2, params: QueryParams): XmlObject {
  const ids = params.list("VolumeId");
  requireVolumes(world, ids);
  const chosen = world
    .volumes()
    .filter((v) => ids.length === 0 || ids.includes(v.id))
    .filter((v) => matchesAll(params.filters(), (name) => volumeField(v, name)));
  const { page, nextToken } = paginate(chosen, params, ids.length > 0 && "volumeIds", 500);
  return { volumeSet: page.map(volumeXml), nextToken };
}

/**
 * The values an instance has for a filter name; undefined for a name EC2 would not know. A tag
 * filter's values are the tag's value, or none when the tag is absent.
 */
function instanceField(instance: LocalInstance, name: string): string[] | undefined {
  switch (name) {
    case "instance-id":
      return [instance.id];
    case "availability-zone":
      return [instance.zone];
    case "instance-state-name":
      return [instance.state];
    case "instance-state-code":
      return [String(INSTANCE_STATE_CODES[instance.state])];
    case "private-ip-address":
      return [instance.privateIp];
    default:
      return tagField(instance.tags, name);
  }
}

function volumeField(volume: LocalVolume, name: string): string[] | undefined {
  switch (name) {
    case "volume-id":
      return [volume.id];
    case "availability-zone":
      return [volume.zone];
    case "status":
      return [volumeStatus(volume)];
    case "size":
      return [String(sizeGiB(volume))];
    case "attachment.instance-id":
      return volume.attachment ? [volume.attachment.instanceId] : [];
    case "attachment.device":
      return volume.attachment ? [volume.attachment.device] : [];
    case "attachment.status":
      return volume.attachment ? [volume.attachment.state] : [];
    default:
      return tagField(volume.tags, name);
  }
}

function tagField(tags: Record<string, string>, name: string): string[] | undefined {
  if (name === "tag-key") return Object.keys(tags);
  if (name === "tag-value") return Object.values(tags);
  if (name.startsWith("tag:")) {
    const value = tags[name.slice(4)];
    return value === undefined ? [] : [value];
  }
  return undefined;
}

/** EC2's filter rule: every filter must match; within one, any of its values (with * and ? wildcards). */
function matchesAll(filters: QueryFilter[], field: (name: string) => string[] | undefined): boolean {
  return filters.every((filter) => {
    const values = field(filter.name);
    if (values === undefined)
      throw new AwsServiceError("InvalidParameterValue", `The filter '${filter.name}' is invalid`);
    return filter.values.some((pattern) => values.some((value) => wildcard(pattern).test(value)));
  });
}

const wildcard = (pattern: string) =>
  new RegExp(
    `^${pattern
      .replace(/[.+^${}()|[\]\\]/g, "\\$&")
      .replaceAll("*", ".*")
      .replaceAll("?", ".")}$`,
    "s",
  );

/**
 * Every id must exist, or nothing is done: one missing id is refused as the world refuses it, several
 * are named together in one refusal.
 */
function requireInstances(world: LocalEc2, ids: string[]) {
  const known = new Set(world.instances().map((i) => i.id));
  const missing = ids.filter((id) => !known.has(id));
  if (missing.length === 1) world.instance(missing[0]!);
  if (missing.length > 1)
    throw new AwsServiceError(
      "InvalidInstanceID.NotFound",
      `The instance IDs '${missing.join(", ")}' do not exist`,
    );
}

function requireVolumes(world: LocalEc2, ids: string[]) {
  const known = new Set(world.volumes().map((v) => v.id));
  const missing = ids.filter((id) => !known.has(id));
  if (missing.length === 1) world.volume(missing[0]!);
  if (missing.length > 1)
    throw new AwsServiceError("InvalidVolume.NotFound", `The volumes '${missing.join(", ")}' do not exist.`);
}

/** MaxResults/NextToken as EC2 takes them: not with ids, 5 at the least; the token is opaque. */
function paginate<T>(all: T[], params: QueryParams, byIds: string | false, max: number) {
  const maxResults = params.integer("MaxResults");
  const token = params.string("NextToken");
  if (maxResults !== undefined && byIds)
    throw new AwsServiceError(
      "InvalidParameterCombination",
      `The parameter ${byIds} cannot be used with the parameter maxResults`,
    );
  if (maxResults !== undefined && (maxResults < 5 || maxResults > max))
    throw new AwsServiceError(
      "InvalidParameterValue",
      `Value (${maxResults}) for parameter maxResults is invalid. Expecting a value between 5 and ${max}.`,
    );
  const start = token === undefined ? 0 : Number(Buffer.from(token, "base64url").toString("utf8"));
  if (!Number.isInteger(start) || start < 0 || start > all.length)
    throw new AwsServiceError("InvalidPaginationToken", `Invalid pagination token: ${token}`);
  const end = maxResults === undefined ? all.length : start + maxResults;
  return {
    page: all.slice(start, end),
    nextToken: end < all.length ? Buffer.from(String(end), "utf8").toString("base64url") : undefined,
  };
}

const stateXml = (name: InstanceStateName) => ({ code: INSTANCE_STATE_CODES[name], name });

const tagSetXml = (tags: Record<string, string>) =>
  Object.entries(tags).map(([key, value]) => ({ key, value }));

/** EBS sizes are whole GiB; a local drive of any size reports at least one. */
const sizeGiB = (volume: LocalVolume) => Math.max(1, Math.ceil(volume.sizeBytes / 1024 ** 3));

function instanceXml(world: LocalEc2, instance: LocalInstance): XmlObject {
  const drives = world.volumes().filter((v) => v.attachment?.instanceId === instance.id);
  return {
    instanceId: instance.id,
    instanceState: stateXml(instance.state),
    privateDnsName: "localhost",
    privateIpAddress: instance.privateIp,
    launchTime: new Date(instance.launchTime),
    placement: { availabilityZone: instance.zone, tenancy: "default" },
    blockDeviceMapping: drives.map((volume) => ({
      deviceName: volume.attachment!.device,
      ebs: {
        volumeId: volume.id,
        status: volume.attachment!.state,
        attachTime: new Date(volume.attachment!.attachTime),
        deleteOnTermination: volume.attachment!.deleteOnTermination ?? false,
      },
    })),
    tagSet: tagSetXml(instance.tags),
  };
}

function volumeXml(volume: LocalVolume): XmlObject {
  const attachment = volume.attachment;
  return {
    volumeId: volume.id,
    size: sizeGiB(volume),
    snapshotId: "",
    availabilityZone: volume.zone,
    status: volumeStatus(volume),
    createTime: new Date(volume.createTime),
    attachmentSet: attachment
      ? [
          {
            volumeId: volume.id,
            instanceId: attachment.instanceId,
            device: attachment.device,
            status: attachment.state,
            attachTime: new Date(attachment.attachTime),
            deleteOnTermination: attachment.deleteOnTermination ?? false,
          },
        ]
      : [],
    tagSet: tagSetXml(volume.tags),
    volumeType: "gp3",
    encrypted: false,
    multiAttachEnabled: false,
  };
}

/** AttachVolume's and DetachVolume's answer: the attachment as the call started moving it. */
const attachmentXml = (
  attachment: VolumeAttachment,
  volumeId: string,
  status: "attaching" | "detaching",
) => ({
  volumeId,
  instanceId: attachment.instanceId,
  device: attachment.device,
  status,
  attachTime: new Date(attachment.attachTime),
  deleteOnTermination: false,
});
