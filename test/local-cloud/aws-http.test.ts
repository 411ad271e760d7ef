import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type AwsEndpoint, startAwsEndpoint } from "../../infra/local/aws/http.js";

/** A protocol that echoes the body's length and states refusals as `<code> <status>`. */
let endpoint: AwsEndpoint;
beforeAll(async () => {
  endpoint = await startAwsEndpoint(
    {
      answer: async (request) => {
        if (request.path === "/boom") throw new Error("broken");
        return { status: 200, headers: {}, body: String(request.body.length) };
      },
      refusal: (error) => ({ status: error.httpStatus, headers: {}, body: `${error.code} ${error.message}` }),
    },
    { maxBodyBytes: 16 },
  );
});
afterAll(() => endpoint?.close());

describe("the shared HTTP layer", () => {
  it("listens on loopback and reads bodies up to the limit", async () => {
    expect(endpoint.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    const response = await fetch(endpoint.url, { method: "POST", body: "x".repeat(16) });
    expect(await response.text()).toBe("16");
  });

  it("refuses a body over the limit, and any failure, in the protocol's own shape", async () => {
    const large = await fetch(endpoint.url, { method: "POST", body: "x".repeat(17) });
    expect(large.status).toBe(413);
    expect(await large.text()).toMatch(/^RequestEntityTooLarge /);
    const broken = await fetch(`${endpoint.url}/boom`);
    expect(broken.status).toBe(500);
    expect(await broken.text()).toBe("InternalFailure broken");
  });
});
