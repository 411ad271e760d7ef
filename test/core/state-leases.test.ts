import { describe, expect, it } from "vitest";
import { underLease } from "../../core/state/leases.js";
import type { StateStore } from "../../core/state/store.js";
import { freshStorePerTest } from "./state-harness.js";

let now = Date.parse("2026-12-03T10:00:00.000Z");
let store: StateStore;
freshStorePerTest(
  (fresh) => {
    store = fresh;
  },
  () => new Date(now),
);

const NAME = "cloudsnaps/vol-1";

describe("leases", () => {
  it("go to one holder at a time, say who holds them, and free up when released or expired", async () => {
    expect(await store.leases.holder(NAME)).toBeUndefined();
    await store.leases.acquire(NAME, "node-1/op-1", 30_000);
    expect(await store.leases.holder(NAME)).toBe("node-1/op-1");
    await expect(store.leases.acquire(NAME, "node-2/op-2", 30_000)).rejects.toThrow(
      "cloudsnaps/vol-1 is in use by node-1/op-1 until 2026-12-03T10:00:30.000Z",
    );
    // The holder renews its own.
    now += 20_000;
    await store.leases.acquire(NAME, "node-1/op-1", 30_000);
    now += 20_000;
    await expect(store.leases.acquire(NAME, "node-2/op-2", 30_000)).rejects.toThrow("in use by node-1/op-1");
    // A holder that died: the lease is free once it expires.
    now += 11_000;
    expect(await store.leases.holder(NAME)).toBeUndefined();
    await store.leases.acquire(NAME, "node-2/op-2", 30_000);
    // The old holder's release does not free what the new one holds.
    await store.leases.release(NAME, "node-1/op-1");
    await expect(store.leases.acquire(NAME, "node-3/op-3", 30_000)).rejects.toThrow("in use by node-2/op-2");
    await store.leases.release(NAME, "node-2/op-2");
    await store.leases.acquire(NAME, "node-3/op-3", 30_000);
  });

  it("are held around work, confirmed before a write that needs them, and released after, also on failure", async () => {
    const lease = { name: NAME, holder: "node-1/op-1", ttlMs: 30_000 };
    await expect(
      underLease(store.leases, lease, async (held) => {
        await held.confirm();
        await expect(store.leases.acquire(NAME, "node-2/op-2", 30_000)).rejects.toThrow("in use");
        throw new Error("the upload failed");
      }),
    ).rejects.toThrow("the upload failed");
    await store.leases.acquire(NAME, "node-2/op-2", 30_000);
    // Held by another: refused before the work starts.
    await expect(
      underLease(store.leases, { ...lease, holder: "node-3/op-3" }, async () => "never"),
    ).rejects.toThrow("in use by node-2/op-2");
    // Lost meanwhile (expired and taken by another): confirm refuses, so the work writes nothing.
    const result = await underLease(store.leases, { ...lease, holder: "node-2/op-2" }, async (held) => {
      now += 31_000;
      await store.leases.acquire(NAME, "node-4/op-4", 30_000);
      return held.confirm().then(
        () => "confirmed",
        (error: Error) => error.message,
      );
    });
    expect(result).toBe(`${NAME} is in use by node-4/op-4 until ${new Date(now + 30_000).toISOString()}`);
  });
});
