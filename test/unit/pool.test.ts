import { mkdirSync, mkdtempSync, rmSync, statfsSync, statSync, truncateSync, writeFileSync } from "node:fs";
import { hostname, tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { Pool, parseDriveSpec, probeFileSizeLimit } from "../../agent/pool.js";

const MiB = 1024 * 1024;
/** statfs f_type of ext2/3/4. */
const EXT4_SUPER_MAGIC = 0xef53;

describe("pool of drives", () => {
  const root = mkdtempSync(join(tmpdir(), "strata-pool-"));
  afterEach(() => rmSync(root, { recursive: true, force: true }));

  it("accounts capacity, used and free across drives and places new replicas on the freest drive", async () => {
    const pool = await Pool.open([
      parseDriveSpec(`${join(root, "d0")}:64MiB`),
      parseDriveSpec(`${join(root, "d1")}:32MiB`),
    ]);
    const [d0, d1] = pool.drives;
    expect(pool.pickDrive()).toBe(d0);
    expect(d0!.tryReserve(48 * MiB)).toBe(true);
    expect(pool.pickDrive()).toBe(d1);
    expect(d0!.tryReserve(17 * MiB)).toBe(false);
    d0!.release(8 * MiB);
    expect(pool.usage(200 * MiB)).toEqual({
      capacityBytes: 96 * MiB,
      usedBytes: 40 * MiB,
      freeBytes: 56 * MiB,
      provisionedBytes: 200 * MiB,
      fileSizeLimitBytes: await probeFileSizeLimit(root),
      filesystemId: `${hostname()}:${statSync(root).dev}`,
      drives: [
        { path: join(root, "d0"), capacityBytes: 64 * MiB, usedBytes: 40 * MiB },
        { path: join(root, "d1"), capacityBytes: 32 * MiB, usedBytes: 0 },
      ],
    });
  });

  it("parses drive specs and sizes the drive from its filesystem when no size is given", async () => {
    expect(parseDriveSpec("/mnt/ebs0:100GiB")).toEqual({
      path: "/mnt/ebs0",
      capacityBytes: 100 * 1024 * MiB,
    });
    expect(parseDriveSpec("/mnt/ebs0")).toEqual({ path: "/mnt/ebs0" });
    expect(() => parseDriveSpec("/mnt/ebs0:lots")).toThrow(/invalid size "lots"/);
    const pool = await Pool.open([{ path: join(root, "auto") }]);
    expect(pool.drives[0]!.capacityBytes).toBeGreaterThan(0);
  });

  it("finds the largest file its filesystem allows, so a volume past it is refused up front", async () => {
    mkdirSync(root, { recursive: true });
    const limit = await probeFileSizeLimit(root);
    if (statfsSync(root).type === EXT4_SUPER_MAGIC && statfsSync(root).bsize === 4096) {
      expect(limit).toBe(16 * 1024 ** 4);
    }
    if (limit === undefined) return;
    const probe = join(root, "probe");
    writeFileSync(probe, "");
    truncateSync(probe, limit - 4096);
    expect(() => truncateSync(probe, limit)).toThrow(expect.objectContaining({ code: "EFBIG" }));
    expect((await Pool.open([{ path: join(root, "d0") }])).usage(0).fileSizeLimitBytes).toBe(limit);
  });
});
