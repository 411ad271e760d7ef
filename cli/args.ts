import type { z } from "zod";
import { isBucketName } from "../core/cloud/s3-client.js";
import { Labels, ReplicationFactor, ResourceName, VolumeSize } from "../core/model.js";
import { formatSize, parseSize } from "../core/units.js";
import { usageError } from "./failures.js";

/**
 * Command-line arguments are checked here, before anything is sent, so a typo is a usage error
 * (exit 2) with a message that quotes it, not a round trip to the agent.
 */

export function volumeSizeArg(text: string): number {
  let bytes: number;
  try {
    bytes = parseSize(text);
  } catch (error) {
    throw usageError((error as Error).message);
  }
  const checked = VolumeSize.safeParse(bytes);
  if (!checked.success) {
    // "10G" is decimal now, as in Kubernetes: say so where it is the reason a size is refused.
    const decimal = /^\s*([\d.]+)\s*([kKMGTP])\s*$/.exec(text);
    const binary = decimal ? `${decimal[1]}${decimal[2]!.toUpperCase()}i` : "";
    const hint = decimal
      ? ` (${text.trim()} is ${bytes} bytes; ${binary} is ${formatSize(parseSize(binary))})`
      : "";
    throw usageError(`invalid size "${text}": ${problemOf(checked.error)}${hint}`);
  }
  return bytes;
}

export function nameArg(text: string, kind: "volume" | "snapshot" | "group" | "policy"): string {
  const checked = ResourceName.safeParse(text);
  if (!checked.success)
    throw usageError(`invalid ${kind} name "${text}": ${checked.error.issues[0]?.message}`);
  return text;
}

export interface SnapshotRef {
  volume: string;
  snapshot: string;
}

/** Snapshots are addressed ZFS-style: VOLUME@SNAPSHOT. */
export function snapshotRefArg(text: string): SnapshotRef {
  const parts = text.split("@");
  const [volume, snapshot] = parts;
  const wellFormed =
    parts.length === 2 && ResourceName.safeParse(volume).success && ResourceName.safeParse(snapshot).success;
  if (!wellFormed) {
    throw usageError(`invalid snapshot reference "${text}": use VOLUME@SNAPSHOT, e.g. data@before-upgrade`);
  }
  return { volume: volume!, snapshot: snapshot! };
}

/** `--repl N`: how many replicas, on distinct nodes (and zones when there are enough). */
export function replicationArg(text: string): number {
  const checked = ReplicationFactor.safeParse(Number(text));
  if (!/^\d+$/.test(text) || !checked.success)
    throw usageError(`invalid replication factor "${text}": use 1, 2 or 3`);
  return checked.data;
}

/** `--label k=v`, repeatable; collected by commander into one Labels object. */
export function labelArg(text: string, previous: Labels = {}): Labels {
  const equals = text.indexOf("=");
  if (equals <= 0) throw usageError(`invalid label "${text}": use KEY=VALUE, e.g. app=postgres`);
  const labels = { ...previous, [text.slice(0, equals)]: text.slice(equals + 1) };
  const checked = Labels.safeParse(labels);
  if (!checked.success) throw usageError(`invalid label "${text}": ${problemOf(checked.error)}`);
  return checked.data;
}

/** A TCP port for a listener; 0 lets the system pick one. */
export function portArg(text: string): number {
  const port = Number(text);
  if (!/^\d+$/.test(text) || port > 65535) throw usageError(`invalid port "${text}": use 0-65535`);
  return port;
}

/** A count of things to run (nodes, zones): a whole number from 1 up. */
export function countArg(text: string): number {
  const count = Number(text);
  if (!/^\d+$/.test(text) || count < 1 || count > MAX_COUNT)
    throw usageError(`invalid count "${text}": use 1-${MAX_COUNT}`);
  return count;
}

/** `--s3-endpoint URL`: an http(s) URL with nothing after the host and port (path-style requests add the bucket). */
export function endpointArg(text: string): string {
  let url: URL | undefined;
  try {
    url = new URL(text);
  } catch {
    url = undefined;
  }
  if (
    url === undefined ||
    !["http:", "https:"].includes(url.protocol) ||
    url.pathname !== "/" ||
    url.search !== ""
  )
    throw usageError(`invalid endpoint "${text}": use a URL such as http://127.0.0.1:4568`);
  return url.origin;
}

/** `--bucket NAME`: a name S3 takes. */
export function bucketArg(text: string): string {
  if (!isBucketName(text))
    throw usageError(
      `invalid bucket name "${text}": use 3-63 lower-case letters, digits, dots and hyphens, starting and ending with a letter or digit`,
    );
  return text;
}

/** More agents than this on one machine is a mistake, not a cluster. */
const MAX_COUNT = 26;

/** The schema's own words for what is wrong with one value (a bad record key says why the key is bad). */
function problemOf(error: z.ZodError): string {
  const issue = error.issues[0];
  if (issue?.code === "invalid_key") return issue.issues[0]?.message ?? issue.message;
  return issue?.message ?? "not valid";
}
