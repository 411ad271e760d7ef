import { describe, expect, it } from "vitest";
import { borrowIoBuffer, returnIoBuffer } from "../../agent/io-buffers.js";

describe("I/O buffer pool", () => {
  it("lends exactly the length asked for and reuses memory given back", () => {
    const first = borrowIoBuffer(1024 * 1024);
    expect(first.length).toBe(1024 * 1024);
    const memory = first.buffer;
    returnIoBuffer(first);
    const second = borrowIoBuffer(1000 * 1000);
    expect(second.length).toBe(1000 * 1000);
    expect(second.buffer).toBe(memory);
    // While lent, the same memory is never lent again.
    expect(borrowIoBuffer(1024 * 1024).buffer).not.toBe(memory);
  });

  it("refuses memory given back twice, which would lend it to two borrowers", () => {
    const buffer = borrowIoBuffer(256 * 1024);
    returnIoBuffer(buffer);
    expect(() => returnIoBuffer(buffer)).toThrow(/given back twice/);
  });

  it("ignores buffers it did not lend and does not pool small ones", () => {
    const foreign = Buffer.allocUnsafe(1024 * 1024);
    returnIoBuffer(foreign);
    expect(borrowIoBuffer(1024 * 1024).buffer).not.toBe(foreign.buffer);
    const small = borrowIoBuffer(4096);
    returnIoBuffer(small);
    returnIoBuffer(small);
    expect(small.length).toBe(4096);
  });
});
