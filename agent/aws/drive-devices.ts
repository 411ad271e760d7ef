import { execFile } from "node:child_process";
import { mkdir, open, readFile, realpath, stat } from "node:fs/promises";
import { join } from "node:path";
import { promisify } from "node:util";
import { writeJsonAtomic } from "../durable-file.js";

const run = promisify(execFile);

/** Where udev links each NVMe device by its serial, which for an EBS volume is the volume's id. */
export const DEFAULT_DISK_BY_ID_DIR = "/dev/disk/by-id";
/** The filesystem label Strata gives the drives it formats (ext4 labels are at most 16 bytes). */
export const DRIVE_LABEL = "strata";
/** At the root of every formatted drive: whose drive it is, checked on every later start. */
export const DRIVE_MARKER = ".strata-drive.json";
/** How much of a device without a known signature must read as zeros before it is formatted. */
const BLANK_PROBE_BYTES = 1024 * 1024;

/** Which drive a device is, as its marker file records it. */
export interface DriveOwner {
  cluster: string;
  driveSet: string;
  volumeId: string;
}

/**
 * The device of an attached EBS volume: the by-id link named after the volume id (without its
 * dash), resolved. Device names (/dev/nvme1n1, /dev/xvdf) are never trusted: NVMe numbers them in
 * the order they appear, which changes from one attach to the next.
 */
export async function deviceOfVolume(byIdDir: string, volumeId: string): Promise<string> {
  const link = join(byIdDir, `nvme-Amazon_Elastic_Block_Store_${volumeId.replace("-", "")}`);
  let device: string;
  try {
    device = await realpath(link);
  } catch {
    throw new Error(
      `EBS volume ${volumeId} is attached to this instance but ${link} does not exist: ` +
        "the attachment may still be completing (the agent retries on its next start), or the host's /dev is not mounted into the agent",
    );
  }
  if (!(await stat(device)).isBlockDevice())
    throw new Error(`EBS volume ${volumeId}: ${link} leads to ${device}, which is not a block device`);
  return device;
}

/** What a device holds, by blkid's low-level probe and, when it finds nothing, by its first bytes. */
export type DeviceContent = { kind: "blank" } | { kind: "strata" } | { kind: "foreign"; description: string };

export async function probeDevice(device: string): Promise<DeviceContent> {
  let output: string;
  try {
    ({ stdout: output } = await run("blkid", ["-p", "-o", "export", device]));
  } catch (error) {
    // Exit code 2: blkid found no signature at all.
    if ((error as { code?: unknown }).code !== 2) throw commandFailure("blkid", device, error);
    return (await readsAsZeros(device, BLANK_PROBE_BYTES))
      ? { kind: "blank" }
      : { kind: "foreign", description: "data blkid does not recognise in its first MiB" };
  }
  const found: Record<string, string> = {};
  for (const line of output.split("\n")) {
    const equals = line.indexOf("=");
    if (equals > 0) found[line.slice(0, equals)] = line.slice(equals + 1);
  }
  if (found.TYPE === "ext4" && found.LABEL === DRIVE_LABEL) return { kind: "strata" };
  if (found.PTTYPE !== undefined)
    return { kind: "foreign", description: `a ${found.PTTYPE} partition table` };
  const label = found.LABEL === undefined ? "no label" : `label "${found.LABEL}"`;
  return {
    kind: "foreign",
    description: `a ${found.TYPE ?? "recognised"} signature (${label}) Strata did not make`,
  };
}

async function readsAsZeros(device: string, bytes: number): Promise<boolean> {
  const handle = await open(device, "r");
  try {
    const buffer = Buffer.alloc(bytes);
    const { bytesRead } = await handle.read(buffer, 0, bytes, 0);
    return buffer.subarray(0, bytesRead).every((byte) => byte === 0);
  } finally {
    await handle.close();
  }
}

/**
 * A blank device becomes a drive: ext4 with Strata's label, no blocks reserved for root (nothing
 * but the agent writes there), no discard pass (a new EBS volume has nothing to discard).
 */
export async function formatDrive(device: string): Promise<void> {
  try {
    await run("mkfs.ext4", ["-q", "-L", DRIVE_LABEL, "-m", "0", "-E", "nodiscard", device]);
  } catch (error) {
    throw commandFailure("mkfs.ext4", device, error);
  }
}

/**
 * Mounts the device at `target`, unless it is mounted there already (an agent restarted in the same
 * pod, or whose earlier mount outlived it on the host). Another filesystem there is refused.
 */
export async function mountDrive(device: string, target: string): Promise<void> {
  await mkdir(target, { recursive: true });
  const { rdev } = await stat(device);
  const mounted = await mountedAt(target);
  if (mounted !== undefined) {
    if (mounted === deviceNumber(rdev)) return;
    throw new Error(`${target} already has another filesystem mounted (device ${mounted}), not ${device}'s`);
  }
  try {
    await run("mount", ["-t", "ext4", "-o", "noatime", device, target]);
  } catch (error) {
    throw commandFailure("mount", device, error);
  }
}

export async function unmountDrive(target: string): Promise<void> {
  try {
    await run("umount", [target]);
  } catch (error) {
    throw commandFailure("umount", target, error);
  }
}

/** The device number ("major:minor") of what is mounted at `target`, from the kernel's mount table. */
async function mountedAt(target: string): Promise<string | undefined> {
  const table = await readFile("/proc/self/mountinfo", "utf8");
  let found: string | undefined;
  for (const line of table.split("\n")) {
    // "36 35 98:0 / /mnt/drive rw,noatime ..." (the mount point escapes spaces as \040).
    const fields = line.split(" ");
    if (fields[4] !== undefined && unescapeMountPath(fields[4]) === target) found = fields[2];
  }
  // The last entry wins: it is the mount on top.
  return found;
}

const unescapeMountPath = (path: string) =>
  path.replace(/\\([0-7]{3})/g, (_, octal: string) => String.fromCharCode(Number.parseInt(octal, 8)));

/** Linux's encoding of a dev_t, as /proc/self/mountinfo prints it. */
function deviceNumber(rdev: number): string {
  const major = ((rdev >> 8) & 0xfff) | (Math.floor(rdev / 2 ** 32) & ~0xfff);
  const minor = (rdev & 0xff) | ((rdev >> 12) & 0xfff00);
  return `${major}:${minor}`;
}

/** The owner a mounted drive records, if it records one. */
export async function readDriveOwner(mountPoint: string): Promise<DriveOwner | undefined> {
  try {
    return JSON.parse(await readFile(join(mountPoint, DRIVE_MARKER), "utf8")) as DriveOwner;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw new Error(`${join(mountPoint, DRIVE_MARKER)} cannot be read: ${(error as Error).message}`);
  }
}

/** Written atomically: a marker torn by a crash would make the drive refuse to start. */
export function writeDriveOwner(mountPoint: string, owner: DriveOwner): Promise<void> {
  return writeJsonAtomic(join(mountPoint, DRIVE_MARKER), owner);
}

function commandFailure(command: string, device: string, error: unknown): Error {
  const stderr = String((error as { stderr?: unknown }).stderr ?? "").trim();
  const why = stderr || (error instanceof Error ? error.message : String(error));
  return new Error(`${command} failed on ${device}: ${why}`);
}
