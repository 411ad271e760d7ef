import { tmpdir } from "node:os";
import { afterAll, beforeAll, expect, it } from "vitest";
import { probeFileSizeLimit } from "../../agent/pool.js";
import { formatSize } from "../../core/units.js";
import { eventually } from "../support/eventually.js";
import { type ApiUnderTest, call, errorOf, startAgentApi } from "./harness.js";

/**
 * Thin volumes on a node whose pool is 8 GiB (its record written by heartbeats, as an agent's):
 * refused up front, in one sentence naming the node, when its filesystem cannot hold the volume as
 * one file or when it would pass the over-provisioning limit, whatever the replication factor.
 */

const GiB = 1024 ** 3;
const TiB = 1024 * GiB;
let agent: ApiUnderTest;

beforeAll(async () => {
  agent = await startAgentApi();
});
afterAll(async () => {
  await agent?.close();
});

const create = (name: string, sizeBytes: number) =>
  call(agent.url, "POST", "/v1/volumes", { name, sizeBytes });

it("refuses a volume its node's filesystem cannot hold as one file, naming the node, the limit and the size", async () => {
  // ext4 with 4 KiB blocks (this machine's /tmp) holds files under 16 TiB; other filesystems may hold more.
  const limit = await probeFileSizeLimit(tmpdir());
  // The project's machines (developers' and CI) have /tmp on ext4: the probe must find its limit.
  expect(limit, "the file size limit of /tmp's filesystem").toBeDefined();
  if (limit === undefined) return;
  const answer = await create("big1", 17 * TiB);
  expect(answer.status).toBe(507);
  expect(errorOf(answer)).toEqual({
    code: "RESOURCE_EXHAUSTED",
    message:
      `needs 1 node with room for 17 TiB; 0 qualify; node-1: its filesystem holds only files smaller than ${formatSize(limit)}, ` +
      "0 B provisioned of 16 GiB allowed (200% of 8 GiB)",
  });
});

it("over-provisions a node up to the limit, then refuses naming its provisioned bytes and the limit", async () => {
  expect((await create("a", 10 * GiB)).status).toBe(201);
  // Placement reads the node's record, which the next heartbeat brings up to date.
  let message = "";
  await eventually(async () => {
    message = errorOf(await create("b", 7 * GiB)).message;
    return message.startsWith("needs 1 node");
  }, "placement to see the provisioned bytes");
  expect(message).toBe(
    "needs 1 node with room for 7 GiB; 0 qualify; node-1: 10 GiB provisioned of 16 GiB allowed (200% of 8 GiB)",
  );
  expect((await create("b", 6 * GiB)).status).toBe(201);
});
