import { EventBridgeClient, PutEventsCommand } from "@aws-sdk/client-eventbridge";
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from "vitest";
import { StrataDetailType, strataEvent } from "../../core/events.js";
import { publishEvents } from "../../functions/shared/event-publisher.js";
import { CLIENT_CONFIG, type LocalCloud, startLocalCloud } from "../local-cloud/aws-harness.js";

let cloud: LocalCloud;
let events: EventBridgeClient;

beforeAll(async () => {
  cloud = await startLocalCloud();
  events = new EventBridgeClient(CLIENT_CONFIG);
});

afterEach(() => {
  vi.restoreAllMocks();
});

afterAll(async () => {
  events?.destroy();
  await cloud?.close();
});

const entries = (count: number) =>
  Array.from({ length: count }, (_, index) =>
    strataEvent(StrataDetailType.redundancyRestored, { volume: `vol-${index}` }),
  );

describe("putting Strata's events through the local EventBridge endpoint", () => {
  it("puts every entry, ten to a PutEvents call, on the bus named", async () => {
    const sent = vi.spyOn(events, "send");
    const from = cloud.eventBus.received.length;

    expect(await publishEvents(events, "default", entries(23))).toBe(23);

    expect(sent).toHaveBeenCalledTimes(3);
    const received = cloud.eventBus.received.slice(from);
    expect(received.map((entry) => entry.detail["volume"])).toEqual(
      entries(23).map((_, index) => `vol-${index}`),
    );
    expect(received.every((entry) => entry.source === "strata")).toBe(true);
  });

  it("fails as transient, naming the bus's error, when the bus refuses an entry", async () => {
    const refused = publishEvents(events, "no-such-bus", entries(1));

    await expect(refused).rejects.toMatchObject({
      name: "Strata.Transient",
      message: expect.stringContaining("InvalidArgument: Event bus no-such-bus does not exist."),
    });
  });

  it("makes no call for no entries", async () => {
    const sent = vi.spyOn(events, "send");

    expect(await publishEvents(events, "default", [])).toBe(0);

    expect(sent).not.toHaveBeenCalledWith(expect.any(PutEventsCommand));
  });
});
