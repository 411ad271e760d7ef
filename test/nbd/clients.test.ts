/** The server against real NBD clients: nbdinfo, qemu-io, nbdcopy, fio. */
import { randomBytes } from "node:crypto";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { fioVerifiedRandomWrites } from "../support/fio.js";
import { type Harness, runOk, startHarness } from "./harness.js";

const MiB = 1024 * 1024;
let h: Harness;
let dir: string;

beforeAll(async () => {
  h = await startHarness({ disk: 64 * MiB, scratch: 16 * MiB, odd: 3 * MiB + 512 });
  dir = await mkdtemp(join(tmpdir(), "strata-nbd-clients-"));
});
afterAll(async () => {
  await h.stop();
  await rm(dir, { recursive: true, force: true });
});

afterEach(async () => {
  await h.settled();
  expect(h.registry.doubleReleases).toBe(0);
  expect(h.registry.releases).toBe(h.registry.opens);
  for (const device of h.registry.devices.values()) expect(device.outOfBounds).toBe(0);
});

function qemuIo(uri: string, ...commands: string[]): Promise<string> {
  return runOk("qemu-io", ["-f", "raw", ...commands.flatMap((c) => ["-c", c]), uri]);
}

describe("NBD server with real clients", () => {
  it("lists exports and shows sizes and block sizes (nbdinfo)", async () => {
    const list = await runOk("nbdinfo", ["--list", "--json", `nbd://127.0.0.1:${h.port}`]);
    const exports = (JSON.parse(list) as { exports: { "export-name": string; "export-size": number }[] })
      .exports;
    expect(Object.fromEntries(exports.map((e) => [e["export-name"], e["export-size"]]))).toEqual({
      disk: 64 * MiB,
      scratch: 16 * MiB,
      odd: 3 * MiB + 512,
    });

    const info = JSON.parse(await runOk("nbdinfo", ["--json", h.uri("odd")])) as {
      protocol: string;
      exports: Record<string, unknown>[];
    };
    expect(info.protocol).toBe("newstyle-fixed");
    expect(info.exports[0]).toMatchObject({
      "export-name": "odd",
      description: "memory volume odd",
      "export-size": 3 * MiB + 512,
      is_read_only: false,
      can_flush: true,
      can_fua: true,
      can_trim: true,
      can_zero: true,
      can_multi_conn: true,
      block_size_minimum: 1,
      block_size_preferred: 4096,
      block_size_maximum: 32 * MiB,
    });

    // Over the Unix socket too.
    const viaUnix = JSON.parse(await runOk("nbdinfo", ["--json", h.unixUri("scratch")])) as {
      exports: { "export-size": number }[];
    };
    expect(viaUnix.exports[0]!["export-size"]).toBe(16 * MiB);
  });

  it("writes, reads back, zeroes, discards and flushes (qemu-io)", async () => {
    const device = h.registry.devices.get("scratch")!;
    const uri = h.uri("scratch");
    const flushes = device.calls.flush;
    await qemuIo(
      uri,
      "write -P 0xa5 0 1M",
      "write -P 0x5a 1M 64k",
      "write -f -P 0x11 2M 4k", // FUA
      "aio_write -P 0x22 4M 128k",
      "aio_write -P 0x33 5M 128k",
      "aio_flush",
      "flush",
    );
    expect(device.data.subarray(0, MiB).every((b) => b === 0xa5)).toBe(true);
    expect(device.data.subarray(MiB, MiB + 65536).every((b) => b === 0x5a)).toBe(true);
    expect(device.fuaWrites).toContain(2 * MiB);
    expect(device.data.subarray(4 * MiB, 4 * MiB + 131072).every((b) => b === 0x22)).toBe(true);
    expect(device.calls.flush).toBeGreaterThan(flushes);

    await qemuIo(
      uri,
      "read -P 0xa5 0 1M",
      "read -P 0x5a 1M 64k",
      "aio_read -P 0x22 4M 128k",
      "aio_read -P 0x33 5M 128k",
      "aio_flush",
      "read -P 0 6M 1M",
    );

    // Unaligned 512-byte I/O.
    await qemuIo(
      uri,
      `write -P 0x77 ${7 * MiB + 512} 512`,
      `write -P 0x78 ${7 * MiB + 1536} 1536`,
      `read -P 0x77 ${7 * MiB + 512} 512`,
    );
    expect(device.data.subarray(7 * MiB + 512, 7 * MiB + 1024).every((b) => b === 0x77)).toBe(true);
    expect(device.data.subarray(7 * MiB + 1024, 7 * MiB + 1536).every((b) => b === 0)).toBe(true);
    expect(device.data.subarray(7 * MiB + 1536, 7 * MiB + 3072).every((b) => b === 0x78)).toBe(true);

    // write -z without -u asks for allocated zeroes (NBD_CMD_FLAG_NO_HOLE); with -u holes are fine.
    const zeroes = device.zeroesCalls.length;
    await qemuIo(uri, "write -z 0 64k", "write -z -u 64k 64k", "read -P 0 0 128k", "read -P 0xa5 128k 64k");
    const calls = device.zeroesCalls.slice(zeroes);
    expect(calls).toContainEqual(expect.objectContaining({ offset: 0, length: 65536, mayPunch: false }));
    expect(calls).toContainEqual(expect.objectContaining({ offset: 65536, length: 65536, mayPunch: true }));

    const trims = device.calls.trim;
    await qemuIo(uri, "discard 1M 64k", "flush");
    expect(device.calls.trim).toBe(trims + 1);
  });

  it("reads and writes the unaligned tail of an export (qemu-io)", async () => {
    const device = h.registry.devices.get("odd")!;
    await qemuIo(h.uri("odd"), `write -P 0x42 ${3 * MiB} 512`, `read -P 0x42 ${3 * MiB} 512`);
    expect(device.data.subarray(3 * MiB).every((b) => b === 0x42)).toBe(true);
    expect(device.data[3 * MiB - 1]).toBe(0);
  });

  it("copies a random 64 MiB image in and out byte-identically over 4 connections (nbdcopy)", async () => {
    const source = join(dir, "source.img");
    const copy = join(dir, "copy.img");
    const image = randomBytes(64 * MiB);
    await writeFile(source, image);
    const opens = h.registry.opens;
    await runOk("nbdcopy", ["--connections=4", "--threads=4", "--requests=16", source, h.uri("disk")]);
    expect(h.registry.opens - opens).toBeGreaterThanOrEqual(4); // multi-conn was used
    expect(h.registry.devices.get("disk")!.data.equals(image)).toBe(true);
    await runOk("nbdcopy", ["--connections=4", "--threads=4", h.unixUri("disk"), copy]);
    expect((await readFile(copy)).equals(image)).toBe(true);
  });

  it("verifies random writes with crc32c over TCP and the Unix socket (fio)", async () => {
    for (const uri of [h.uri("scratch"), h.unixUri("scratch")]) {
      const job = await fioVerifiedRandomWrites(uri, "16M");
      expect(job.error).toBe(0);
      expect(job.write.io_bytes).toBe(16 * MiB);
      expect(job.read.io_bytes).toBe(16 * MiB); // the verify pass read everything back
    }
  });
});
