import { describe, expect, it } from "vitest";
import { borrowIoBuffer, returnIoBuffer } from "../../agent/io-buffers.js";
import { FrameDecoder } from "../../agent/replication/wire/frame-codec.js";
import { FrameType, HEADER_SIZE } from "../../agent/replication/wire/protocol.js";
import { ByteQueue } from "../../agent/wire/byte-queue.js";
import { pattern } from "./harness.js";
import { frame, request } from "./raw-peer.js";

describe("frame codec", () => {
  it("decodes a frame however the stream splits it", () => {
    const fields = request({
      type: FrameType.WRITE,
      flags: 1,
      requestId: 0xfffffffe,
      volumeId: "0b5f2a3e-volume-ünïcode",
      epoch: Number.MAX_SAFE_INTEGER,
      offset: 2 ** 40 + 12_345,
      length: 1000,
    });
    const payload = pattern(1000, 5);
    const bytes = Buffer.concat([frame(fields, payload), frame({ ...fields, requestId: 7 }, payload)]);
    for (const step of [1, 3, 41, 500, bytes.length]) {
      const queue = new ByteQueue();
      const decoder = new FrameDecoder(queue, 4096);
      const decoded = [];
      for (let at = 0; at < bytes.length; at += step) {
        queue.push(bytes.subarray(at, at + step));
        for (let r = decoder.next(); r.kind === "frame"; r = decoder.next()) decoded.push(r.frame);
      }
      expect(decoded).toEqual([
        { ...fields, payload, defect: undefined },
        { ...fields, requestId: 7, payload, defect: undefined },
      ]);
      expect(queue.length).toBe(0);
    }
  });

  it("assembles a payload spanning socket chunks in pooled memory, and one inside a chunk in place", () => {
    const fields = request({ type: FrameType.WRITE, length: 256 * 1024 });
    const payload = pattern(256 * 1024, 9);
    const bytes = frame(fields, payload);
    const queue = new ByteQueue();
    const decoder = new FrameDecoder(queue, 1024 * 1024);
    for (let at = 0; at < bytes.length; at += 64 * 1024) queue.push(bytes.subarray(at, at + 64 * 1024));
    const result = decoder.next();
    if (result.kind !== "frame") throw new Error(`no frame: ${result.kind}`);
    expect(result.frame.payload.equals(payload)).toBe(true);
    // Given back by whoever holds it last, the memory is lent again.
    returnIoBuffer(result.frame.payload);
    expect(borrowIoBuffer(256 * 1024).buffer).toBe(result.frame.payload.buffer);

    const small = frame({ ...fields, length: 100 }, payload.subarray(0, 100));
    queue.push(small);
    const view = decoder.next();
    if (view.kind !== "frame") throw new Error(`no frame: ${view.kind}`);
    expect(view.frame.payload.buffer).toBe(small.buffer);
  });

  it("refuses an oversized frame from its header alone", () => {
    const queue = new ByteQueue();
    const decoder = new FrameDecoder(queue, 4096);
    queue.push(frame(request({ type: FrameType.WRITE }), Buffer.alloc(0), 4097).subarray(0, HEADER_SIZE));
    expect(decoder.next()).toMatchObject({ kind: "fatal", reason: "frame payload over the maximum" });
    decoder.maxPayload = 4097;
    expect(decoder.next()).toEqual({ kind: "incomplete" });
  });

  it("marks 64-bit fields over 2^53 - 1 as a defect instead of rounding them", () => {
    const bytes = frame(request({ type: FrameType.READ, length: 1 }), Buffer.alloc(0));
    bytes.writeUInt32BE(0x00200000, 24); // offset 2^53
    const queue = new ByteQueue();
    queue.push(bytes);
    expect(new FrameDecoder(queue, 0).next()).toMatchObject({
      kind: "frame",
      frame: { defect: "a 64-bit field is over 2^53 - 1" },
    });
  });
});
