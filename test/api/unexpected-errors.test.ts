import { afterAll, beforeAll, expect, it } from "vitest";
import type { VolumeService } from "../../core/volume-service.js";
import { type ApiUnderTest, call, errorOf, serveApi } from "./harness.js";

/**
 * A service that fails the way a bug or a broken disk would: the real manager cannot be made to do
 * that on demand, so this is the one place a stand-in is used.
 */
const broken = new Proxy({} as VolumeService, {
  get: () => async () => {
    throw new Error("EIO: read failed at /var/lib/strata/secret/volume.json");
  },
});

let api: ApiUnderTest;
beforeAll(async () => {
  api = await serveApi(broken);
});
afterAll(async () => {
  await api?.close();
});

it("answers 500 with a generic message and logs the stack, not leaking internals", async () => {
  const answer = await call(api.url, "GET", "/v1/volumes");
  expect(answer.status).toBe(500);
  expect(errorOf(answer).code).toBe("INTERNAL");
  expect(errorOf(answer).message).not.toContain("/var/lib/strata");

  const logged = api.lines.find((line) => line.msg === "control request failed unexpectedly");
  expect(logged).toMatchObject({ level: 50, method: "GET", path: "/v1/volumes" });
  expect(logged?.err).toMatchObject({ stack: expect.stringContaining("EIO: read failed") });
});
