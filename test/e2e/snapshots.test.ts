import { createHash } from "node:crypto";
import { createReadStream } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { connectTransmission } from "../nbd/wire.js";
import { AgentProcess } from "../support/agent-process.js";
import { eventually } from "../support/eventually.js";
import { run } from "../support/run.js";

const MiB = 1024 * 1024;

/**
 * Snapshots through the whole stack: data goes in with qemu-io, contents come out with nbdcopy, and
 * every view is compared by the checksum of the entire device at the moment the snapshot was taken.
 */
describe("snapshots, clones and revert seen by NBD clients", () => {
  let agent: AgentProcess;
  let dumps = 0;

  const digestOf = async (volume: string): Promise<string> => {
    const file = join(agent.root, `dump-${dumps++}.img`);
    await run("nbdcopy", [agent.nbdUri(volume), file]);
    const hash = createHash("sha256");
    for await (const chunk of createReadStream(file)) hash.update(chunk as Buffer);
    return hash.digest("hex");
  };
  const write = (volume: string, ...commands: string[]) =>
    run("qemu-io", ["-f", "raw", agent.nbdUri(volume), ...commands.flatMap((c) => ["-c", c])]);
  const snapshot = async (volume: string, name: string) => {
    const response = await agent.api("POST", `/v1/volumes/${volume}/snapshots`, { name });
    expect(response.status).toBe(201);
  };
  /** Clones a snapshot into a new attached volume and returns the digest of its contents. */
  const cloneDigest = async (volume: string, snap: string, target: string) => {
    const response = await agent.api("POST", `/v1/volumes/${volume}/snapshots/${snap}/clone`, { target });
    expect(response.status).toBe(201);
    await agent.api("POST", `/v1/volumes/${target}/attach`);
    return digestOf(target);
  };

  beforeAll(async () => {
    agent = await new AgentProcess().start();
  });
  afterAll(async () => {
    await agent.destroy();
  });

  it("keeps snapshots frozen, clones and reverts to exact bytes, and survives deleting middle snapshots", async () => {
    await agent.createAttachedVolume("db", 64 * MiB);
    const expected = new Map<string, string>();

    await write("db", "write -P 0x11 0 8M", "write -P 0x12 20M 3M", "write -P 0x13 63M 1M");
    await snapshot("db", "s1");
    expected.set("s1", await digestOf("db"));

    await write(
      "db",
      "write -P 0x21 4M 8M",
      "write -z 20M 1M",
      "discard 63M 512k",
      "write -P 0x22 1000 7000",
    );
    await snapshot("db", "s2");
    expected.set("s2", await digestOf("db"));

    await write("db", "write -P 0x31 0 2M", "write -P 0x32 30M 10M", "write -z 5M 1M");
    await snapshot("db", "s3");
    expected.set("s3", await digestOf("db"));

    await write("db", "write -P 0x41 1M 1M", "write -P 0x42 50M 4M");
    const head = await digestOf("db");
    expect(new Set([...expected.values(), head]).size).toBe(4);

    for (const name of ["s1", "s2", "s3"]) {
      expect(await cloneDigest("db", name, `clone-${name}`)).toBe(expected.get(name));
    }
    // A clone is independent: writing it changes neither the source nor its snapshot.
    await write("clone-s1", "write -P 0x77 0 4M");
    expect(await digestOf("db")).toBe(head);

    // Deleting the middle snapshot, then the oldest, keeps every other view intact.
    expect((await agent.api("DELETE", "/v1/volumes/db/snapshots/s2")).status).toBe(204);
    expect(await digestOf("db")).toBe(head);
    expect(await cloneDigest("db", "s1", "after-delete-s1")).toBe(expected.get("s1"));
    expect(await cloneDigest("db", "s3", "after-delete-s3")).toBe(expected.get("s3"));
    expect((await agent.api("DELETE", "/v1/volumes/db/snapshots/s1")).status).toBe(204);
    expect(await cloneDigest("db", "s3", "after-delete-s1-s3")).toBe(expected.get("s3"));

    // Revert waits for no client (none may see its bytes change underneath it), then works on the
    // volume attached (here with no client), or detached (through a maintenance attachment).
    const port = Number(agent.endpoints.nbdAddress.split(":")[1]);
    const { client } = await connectTransmission(port, "db");
    expect((await agent.api("POST", "/v1/volumes/db/revert", { snapshot: "s3" })).status).toBe(409);
    client.socket.destroy();
    await client.closed;
    await eventually(
      async () => (await agent.api("POST", "/v1/volumes/db/revert", { snapshot: "s1-gone" })).status === 404,
      "the client's lease is released",
    );
    expect((await agent.api("POST", "/v1/volumes/db/revert", { snapshot: "s3" })).status).toBe(200);
    expect(await digestOf("db")).toBe(expected.get("s3"));
    await write("db", "write -P 0x78 0 1M");
    await agent.api("POST", "/v1/volumes/db/detach");
    expect((await agent.api("POST", "/v1/volumes/db/revert", { snapshot: "s3" })).status).toBe(200);
    expect(
      (await agent.api<{ attachedNode: string | null }>("GET", "/v1/volumes/db")).body.attachedNode,
    ).toBeNull();
    await agent.api("POST", "/v1/volumes/db/attach");
    expect(await digestOf("db")).toBe(expected.get("s3"));

    // And all of it is still true after the agent restarts.
    await agent.stop();
    await agent.start();
    expect(await digestOf("db")).toBe(expected.get("s3"));
    expect(await digestOf("after-delete-s1-s3")).toBe(expected.get("s3"));
  });

  it("a full pool fails writes with ENOSPC and damages nothing already written", async () => {
    const small = new AgentProcess(undefined, ["--drive", `${join(agent.root, "small-drive")}:8MiB`]);
    await small.start();
    try {
      // Thin: twice the pool, as the default over-provisioning limit allows.
      const uri = await small.createAttachedVolume("full", 16 * MiB);
      await run("qemu-io", ["-f", "raw", uri, "-c", "write -P 0x66 0 4M", "-c", "flush"]);
      await expect(run("qemu-io", ["-f", "raw", uri, "-c", "write -P 0x67 4M 8M"])).rejects.toThrow(
        /No space left on device/,
      );
      await run("qemu-io", ["-f", "raw", uri, "-c", "read -P 0x66 0 4M"]);
      const node = await small.api<{ pool: { freeBytes: number; usedBytes: number } }>("GET", "/v1/node");
      expect(node.body.pool.usedBytes).toBeLessThanOrEqual(8 * MiB);
    } finally {
      await small.destroy();
    }
  });
});
