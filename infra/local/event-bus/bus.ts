import { appendFile } from "node:fs/promises";
import type { PutEventsResultEntry } from "@aws-sdk/client-eventbridge";
import type { EventRuleDefinition } from "../../event-rules.js";
import { type AwsEvent, awsEvent } from "../aws/aws-event.js";
import type { EventBusApi, EventBusEntry } from "../aws/eventbridge-endpoint.js";
import { matchesEventPattern, validateEventPattern } from "./event-pattern.js";

export interface LocalEventBusOptions {
  rules: readonly EventRuleDefinition[];
  /** Where a matched event goes (the event-intake Lambda, invoked asynchronously). */
  deliver(rule: EventRuleDefinition, event: AwsEvent): Promise<unknown>;
  /** Every event put, one JSON document per line, for `strata events`. */
  logFile: string;
  /** A delivery that failed for good, after its retries. */
  undeliverable(rule: EventRuleDefinition, event: AwsEvent, error: unknown): void;
}

/**
 * Lambda retries a failed asynchronous invocation twice; the bus does the same for its deliveries,
 * a little apart, so a task that failed on a store hiccup is not lost.
 */
const DELIVERY_ATTEMPTS = 3;
const DELIVERY_RETRY_MS = 1_000;

/**
 * The local cloud's EventBridge bus: events put by the functions (PutEvents through the local
 * endpoint) and by the local cloud's own AWS services (EC2 state changes, lifecycle actions) are
 * logged, matched against Strata's rules (the very patterns the CDK app deploys) and delivered.
 * Delivery is asynchronous, as EventBridge's is: putting an event never waits for its target.
 */
export class LocalEventBus implements EventBusApi {
  private readonly rules: readonly EventRuleDefinition[];
  private readonly deliveries = new Set<Promise<void>>();
  private logged: Promise<void> = Promise.resolve();
  private closed = false;

  constructor(private readonly options: LocalEventBusOptions) {
    this.rules = options.rules.map((rule) => ({
      ...rule,
      eventPattern: validateEventPattern(rule.eventPattern),
    }));
  }

  /** PutEvents, for entries the endpoint has checked: one result per entry, in order. */
  async putEvents(entries: EventBusEntry[]): Promise<PutEventsResultEntry[]> {
    return entries.map((entry) => {
      if (entry.eventBusName !== undefined && entry.eventBusName !== "default") {
        return {
          ErrorCode: "ResourceNotFoundException",
          ErrorMessage: `Event bus ${entry.eventBusName} does not exist.`,
        };
      }
      const event = awsEvent(entry.source, entry.detailType, entry.resources, entry.detail, entry.time);
      this.publish(event);
      return { EventId: event.id };
    });
  }

  /** An event from the local cloud's own services (EC2, Auto Scaling), already in its envelope. */
  publish(event: AwsEvent): void {
    this.logged = this.logged.then(() =>
      appendFile(this.options.logFile, `${JSON.stringify(event)}\n`).catch(() => {}),
    );
    if (this.closed) return;
    for (const rule of this.rules) {
      if (!matchesEventPattern(rule.eventPattern, event)) continue;
      const delivery = this.deliver(rule, event);
      this.deliveries.add(delivery);
      void delivery.finally(() => this.deliveries.delete(delivery));
    }
  }

  /** Stops delivering and waits for the deliveries under way and the log. */
  async close(): Promise<void> {
    this.closed = true;
    await Promise.allSettled([...this.deliveries]);
    await this.logged;
  }

  private async deliver(rule: EventRuleDefinition, event: AwsEvent): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      try {
        await this.options.deliver(rule, event);
        return;
      } catch (error) {
        if (attempt === DELIVERY_ATTEMPTS || this.closed) {
          this.options.undeliverable(rule, event, error);
          return;
        }
        await new Promise((resolve) => setTimeout(resolve, DELIVERY_RETRY_MS * attempt));
      }
    }
  }
}
