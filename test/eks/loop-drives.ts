import { mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { run } from "../support/run.js";

/**
 * EBS volumes as a Nitro instance shows them, on this machine: each a loop device over a sparse
 * file, linked under a by-id directory of its own by the name udev gives an EBS volume's NVMe
 * device. Everything made is undone by `close` (unmounted, detached, removed).
 */
export class LoopDrives {
  readonly dir = mkdtempSync(join(tmpdir(), "strata-eks-"));
  readonly byIdDir = join(this.dir, "by-id");
  private readonly devices: string[] = [];

  constructor() {
    mkdirSync(this.byIdDir);
  }

  /** A blank device of `sizeBytes` for the EBS volume `volumeId`; returns the device path. */
  async add(volumeId: string, sizeBytes = 64 * 1024 * 1024): Promise<string> {
    const image = join(this.dir, `${volumeId}.img`);
    await run("truncate", ["-s", String(sizeBytes), image]);
    const device = (await run("losetup", ["-f", "--show", image])).trim();
    this.devices.push(device);
    symlinkSync(device, join(this.byIdDir, `nvme-Amazon_Elastic_Block_Store_${volumeId.replace("-", "")}`));
    return device;
  }

  /** Where `device` is mounted, per the kernel's mount table (its last, topmost, mount). */
  static mountPointOf(device: string): string | undefined {
    const lines = readFileSync("/proc/self/mounts", "utf8").split("\n");
    return lines
      .map((line) => line.split(" "))
      .filter((fields) => fields[0] === device)
      .map((fields) => fields[1]!)
      .at(-1);
  }

  async close(): Promise<void> {
    for (const device of this.devices) {
      for (let mount = LoopDrives.mountPointOf(device); mount; mount = LoopDrives.mountPointOf(device))
        await run("umount", [mount]);
      await run("losetup", ["-d", device]);
    }
    rmSync(this.dir, { recursive: true, force: true });
  }
}
