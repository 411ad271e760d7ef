import { randomBytes } from "node:crypto";
import { describe, expect, it, vi } from "vitest";
import { connectReplica } from "../../agent/replication/client.js";
import { ReplicaAuthError } from "../../agent/replication/errors.js";
import { startReplicaServer } from "../../agent/replication/server/server.js";
import { FrameFlag, FrameType, Status } from "../../agent/replication/wire/protocol.js";
import { BLOCK } from "../store/helpers.js";
import { expectClosedWith, expectServingAndUntouched, pattern, SECRET, useServer } from "./harness.js";
import { RawPeer, request } from "./raw-peer.js";

const WRONG_SECRET = "not-the-cluster-secret-at-all!!";

describe("replication peer authentication", () => {
  const h = useServer({ "vol-1": 1 }, { handshakeTimeoutMs: 300 });

  it("refuses a client with the wrong secret", async () => {
    await expect(h.connect({ secret: WRONG_SECRET })).rejects.toBeInstanceOf(ReplicaAuthError);
    // The client checks the server's proof first, so it is the one to find the secrets differ;
    // it tells the server, which logs the refusal.
    await vi.waitFor(() =>
      expect(h.log.warnings()).toContain(
        "replication: connection refused: the peer refused our proof: the server does not hold the cluster secret",
      ),
    );
    await expectServingAndUntouched(h);
  });

  it("refuses, on the client side, a server that does not hold the secret", async () => {
    const impostor = await startReplicaServer({
      host: "127.0.0.1",
      port: 0,
      secret: WRONG_SECRET,
      resolve: () => h.replica(),
      log: h.log.logger,
    });
    try {
      const connecting = connectReplica({
        host: "127.0.0.1",
        port: impostor.address.port,
        secret: SECRET,
        log: h.log.logger,
      });
      await expect(connecting).rejects.toThrow(/the server does not hold the cluster secret/);
      await expect(connecting).rejects.toBeInstanceOf(ReplicaAuthError);
    } finally {
      await impostor.close();
    }
  });

  it("acts on nothing pipelined behind a wrong proof", async () => {
    const peer = await RawPeer.open(h.port);
    peer.send({ ...request({ type: FrameType.HELLO }), volumeId: "" }, randomBytes(32));
    expect((await peer.nextFrame()).type).toBe(FrameType.CHALLENGE);
    peer.send({ ...request({ type: FrameType.AUTH }), volumeId: "" }, randomBytes(32));
    peer.send(request({ type: FrameType.WRITE, length: BLOCK, flags: FrameFlag.FUA }), pattern(BLOCK, 1));
    await expectClosedWith(peer, Status.AUTH_FAILED);
    expect(h.log.warnings()).toContain(
      "replication: connection refused: the peer does not hold the cluster secret",
    );
    await expectServingAndUntouched(h);
  });

  it("refuses requests sent without a handshake", async () => {
    const peer = await RawPeer.open(h.port);
    peer.send(request({ type: FrameType.WRITE, length: BLOCK }), pattern(BLOCK, 1));
    await expectClosedWith(peer, Status.AUTH_FAILED);
    await expectServingAndUntouched(h);
  });

  it("drops a peer that never authenticates", async () => {
    const peer = await RawPeer.open(h.port);
    await expectClosedWith(peer, Status.AUTH_FAILED);
    expect(h.log.warnings()).toContain("replication: connection refused: no authentication in time");
    await expectServingAndUntouched(h);
  });

  it("refuses garbage", async () => {
    const peer = await RawPeer.open(h.port);
    peer.sendBytes(randomBytes(4096));
    await expectClosedWith(peer, Status.AUTH_FAILED);
    expect(h.log.warnings()).toContain("replication: connection refused: bad frame magic");
    await expectServingAndUntouched(h);
  });

  it("refuses a large frame before authentication without waiting for its payload", async () => {
    const peer = await RawPeer.open(h.port);
    // Declares 1 MiB but sends none of it: the server must not wait to buffer it.
    peer.send({ ...request({ type: FrameType.HELLO }), volumeId: "" }, Buffer.alloc(0), 1024 * 1024);
    await expectClosedWith(peer, Status.AUTH_FAILED);
    await expectServingAndUntouched(h);
  });

  it("keeps serving an authenticated client while other peers are refused", async () => {
    const client = await h.connect();
    const writes = Array.from({ length: 64 }, (_, i) =>
      client.write("vol-1", 1, i * BLOCK, pattern(BLOCK, i), { fua: false }),
    );
    const intruders = await Promise.all([RawPeer.open(h.port), RawPeer.open(h.port)]);
    intruders[0]!.sendBytes(randomBytes(100));
    intruders[1]!.send(request({ type: FrameType.TRIM, length: 64 * BLOCK }));
    await Promise.all([...writes, ...intruders.map((peer) => peer.closed)]);
    for (let i = 0; i < 64; i++)
      expect(await client.read("vol-1", i * BLOCK, BLOCK)).toEqual(pattern(BLOCK, i));
  });

  it("will not start with a short secret", async () => {
    await expect(
      startReplicaServer({
        host: "127.0.0.1",
        port: 0,
        secret: "short",
        resolve: () => undefined,
        log: h.log.logger,
      }),
    ).rejects.toThrow(/at least 16 bytes/);
  });
});
