import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { UnknownVolumeError } from "../../agent/replication/errors.js";
import {
  FrameFlag,
  FrameType,
  MAX_IO_BYTES,
  REPLY_BIT,
  Status,
} from "../../agent/replication/wire/protocol.js";
import { BLOCK } from "../store/helpers.js";
import { expectClosedWith, expectServingAndUntouched, pattern, SECRET, useServer } from "./harness.js";
import { frame, RawPeer, request } from "./raw-peer.js";

describe("malformed replication frames", () => {
  const h = useServer({ "vol-1": 1 });
  let peer: RawPeer;

  // After the server starts; destroyed before it stops.
  beforeEach(async () => {
    peer = await RawPeer.authenticated(h.port, SECRET);
  });
  afterEach(() => {
    peer.destroy();
  });

  it("answers a well-formed but unacceptable request with BAD_REQUEST and keeps the connection", async () => {
    const cases = [
      { why: "unknown type", fields: request({ type: 99, requestId: 1 }) },
      { why: "handshake type after auth", fields: request({ type: FrameType.HELLO, requestId: 2 }) },
      {
        why: "length ≠ payload",
        fields: request({ type: FrameType.WRITE, requestId: 3, length: 2 * BLOCK }),
      },
      {
        why: "unknown flag",
        fields: request({ type: FrameType.WRITE, requestId: 4, length: BLOCK, flags: 0x80 }),
      },
      {
        why: "MAY_PUNCH on a write",
        fields: request({ type: FrameType.WRITE, requestId: 5, length: BLOCK, flags: FrameFlag.MAY_PUNCH }),
      },
      {
        why: "status in a request",
        fields: request({ type: FrameType.WRITE, requestId: 6, length: BLOCK, status: 5 }),
      },
      { why: "empty trim", fields: request({ type: FrameType.TRIM, requestId: 7, length: 0 }) },
      { why: "short SET_EPOCH", fields: request({ type: FrameType.SET_EPOCH, requestId: 8 }) },
    ];
    for (const { fields } of cases) {
      const hasPayload = fields.type === FrameType.WRITE || fields.type === 99;
      peer.send(fields, hasPayload ? pattern(BLOCK, 1) : undefined);
    }
    // A snapshot request whose payload is not JSON.
    peer.send(request({ type: FrameType.SNAPSHOT, requestId: 9 }), Buffer.from("{not json"));
    // An epoch over 2^53 - 1 (high half 0x00200000).
    const overflow = frame(
      request({ type: FrameType.WRITE, requestId: 10, length: BLOCK }),
      pattern(BLOCK, 1),
    );
    overflow.writeUInt32BE(0x200000, 16);
    peer.sendBytes(overflow);

    const replies = [];
    for (let i = 0; i < cases.length + 2; i++) replies.push(await peer.nextFrame());
    expect(replies.map((r) => r.requestId).sort((a, b) => a - b)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
    for (const reply of replies) expect(reply.status, `request ${reply.requestId}`).toBe(Status.BAD_REQUEST);

    // The same connection still serves a good request.
    peer.send(request({ type: FrameType.GET_STATE, requestId: 11, epoch: 0 }));
    const state = await peer.nextFrame();
    expect([state.type, state.requestId, state.status]).toEqual([
      FrameType.GET_STATE | REPLY_BIT,
      11,
      Status.OK,
    ]);
    await expectServingAndUntouched(h);
  });

  it("closes the connection on a bad magic, acting on nothing after it", async () => {
    const bad = frame(request({ type: FrameType.WRITE, length: BLOCK }), pattern(BLOCK, 1));
    bad.writeUInt32BE(0xdeadbeef, 0);
    peer.sendBytes(
      Buffer.concat([bad, frame(request({ type: FrameType.WRITE, length: BLOCK }), pattern(BLOCK, 2))]),
    );
    await expectClosedWith(peer, Status.BAD_REQUEST);
    await expectServingAndUntouched(h);
  });

  it("closes the connection on an unknown protocol version", async () => {
    const bad = frame(request({ type: FrameType.WRITE, length: BLOCK }), pattern(BLOCK, 1));
    bad[4] = 2;
    peer.sendBytes(bad);
    expect((await peer.framesUntilClosed()).map((f) => f.status)).toEqual([Status.BAD_REQUEST]);
    await expectServingAndUntouched(h);
  });

  it("closes the connection on an oversized frame before buffering it", async () => {
    // Declares one byte over the maximum and sends only the header.
    peer.send(
      request({ type: FrameType.WRITE, length: MAX_IO_BYTES + 1 }),
      Buffer.alloc(0),
      MAX_IO_BYTES + 1,
    );
    await expectClosedWith(peer, Status.BAD_REQUEST);
    expect(h.log.warnings()).toContain("replication: connection refused: frame payload over the maximum");
    await expectServingAndUntouched(h);
  });

  it("refuses requests for a volume it does not hold", async () => {
    const client = await h.connect();
    const error = await client
      .write("vol-404", 1, 0, pattern(BLOCK, 1), { fua: false })
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(UnknownVolumeError);
    expect(error).toMatchObject({ status: Status.UNKNOWN_VOLUME, volumeId: "vol-404" });
    await expect(client.getState("vol-404")).rejects.toBeInstanceOf(UnknownVolumeError);
    await expectServingAndUntouched(h);
  });
});
