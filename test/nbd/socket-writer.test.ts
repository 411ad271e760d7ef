import { EventEmitter } from "node:events";
import type { Socket } from "node:net";
import { setImmediate as nextTurn } from "node:timers/promises";
import { describe, expect, it } from "vitest";
import { borrowIoBuffer } from "../../agent/io-buffers.js";
import { MAX_QUEUED_BYTES, SocketWriter } from "../../agent/wire/socket-writer.js";

/** Records what a SocketWriter hands to its socket; the test decides how much the socket holds. */
class FakeSocket extends EventEmitter {
  destroyed = false;
  writable = true;
  writableLength = 0;
  corked = 0;
  /** One entry per burst: the parts written between cork and uncork (or one uncorked write). */
  bursts: Buffer[][] = [];
  private burst: Buffer[] | undefined;
  readonly callbacks: (() => void)[] = [];

  cork(): void {
    this.corked++;
    this.burst = [];
  }

  uncork(): void {
    this.bursts.push(this.burst!);
    this.burst = undefined;
  }

  write(part: Buffer, callback?: () => void): boolean {
    if (this.burst !== undefined) this.burst.push(Buffer.from(part));
    else this.bursts.push([Buffer.from(part)]);
    if (callback !== undefined) this.callbacks.push(callback);
    return true;
  }
}

/** A header of one byte: the message's tag. */
const encodeTag = (target: Buffer, at: number, tag: number) => {
  target[at] = tag;
  return 1;
};

function writerOn(socket: FakeSocket, hooks = {}) {
  return new SocketWriter(socket as unknown as Socket, encodeTag, 1, hooks);
}

describe("socket writer", () => {
  it("sends what one turn queued in one burst, small payloads next to their header", async () => {
    const socket = new FakeSocket();
    const writer = writerOn(socket);
    const large = Buffer.alloc(64 * 1024, 7);
    writer.send(1, Buffer.from("ab"));
    writer.send(2);
    writer.send(3, large);
    writer.send(4);
    expect(socket.bursts).toEqual([]);
    await nextTurn();
    expect(socket.bursts).toEqual([[Buffer.from([1, 97, 98, 2, 3]), large, Buffer.from([4])]]);
  });

  it("gives pooled payloads back only once the socket has written them", async () => {
    const socket = new FakeSocket();
    const writer = writerOn(socket);
    const data = borrowIoBuffer(1024 * 1024);
    const memory = data.buffer;
    writer.send(1, data, true);
    await nextTurn();
    // Written but not yet confirmed: the memory must not be lent again.
    expect(borrowIoBuffer(1024 * 1024).buffer).not.toBe(memory);
    for (const callback of socket.callbacks) callback();
    expect(borrowIoBuffer(1024 * 1024).buffer).toBe(memory);
  });

  it("gives back a small pooled payload as soon as it is copied", () => {
    const socket = new FakeSocket();
    const writer = writerOn(socket);
    // Pooled sizes start at 64 KiB; a view of pooled memory stands for a small pooled payload.
    const data = borrowIoBuffer(64 * 1024);
    writer.send(1, data.subarray(0, 100), true);
    expect(borrowIoBuffer(64 * 1024).buffer).toBe(data.buffer);
  });

  it("keeps many large messages in the socket, then holds them back until it drains", async () => {
    const socket = new FakeSocket();
    const events: string[] = [];
    const writer = writerOn(socket, {
      onBackpressure: () => events.push("backpressure"),
      onDrain: () => events.push("drain"),
    });
    const payload = Buffer.alloc(1024 * 1024);
    writer.send(1, payload);
    socket.writableLength = MAX_QUEUED_BYTES - 1;
    await nextTurn();
    expect(writer.blocked).toBe(false);
    writer.send(2, payload);
    socket.writableLength = MAX_QUEUED_BYTES;
    await nextTurn();
    expect(writer.blocked).toBe(true);
    expect(events).toEqual(["backpressure"]);
    writer.send(3, payload);
    await nextTurn();
    expect(socket.bursts.length).toBe(2);
    socket.writableLength = 0;
    socket.emit("drain");
    expect(socket.bursts.length).toBe(3);
    expect(writer.blocked).toBe(false);
    expect(events).toEqual(["backpressure", "drain"]);
  });

  it("writes nothing to a destroyed socket and gives its pooled payloads back", async () => {
    const socket = new FakeSocket();
    const writer = writerOn(socket);
    const data = borrowIoBuffer(1024 * 1024);
    writer.send(1, data, true);
    socket.destroyed = true;
    await nextTurn();
    expect(socket.bursts).toEqual([]);
    expect(borrowIoBuffer(1024 * 1024).buffer).toBe(data.buffer);
  });
});
