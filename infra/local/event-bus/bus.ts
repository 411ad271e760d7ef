import { randomUUID } from "node:crypto";
import { appendFile } from "node:fs/promises";
import type { EventRuleDefinition } from "../../event-rules.js";
import { LOCAL_ACCOUNT_ID, localRegion } from "../aws/identity.js";
import { matchesEventPattern, validateEventPattern } from "./event-pattern.js";

/** An event as EventBridge delivers it: the envelope AWS documents, with the detail parsed. */
export interface BusEvent {
  version: "0";
  id: string;
  "detail-type": string;
  source: string;
  account: string;
  time: string;
  region: string;
  resources: string[];
  detail: Record<string, unknown>;
}

/** What a source puts: PutEvents' entry, with the detail already an object. */
export interface NewBusEvent {
  source: string;
  detailType: string;
  detail: Record<string, unknown>;
  resources?: string[];
  /** When the source saw it; now by default. */
  time?: Date;
}

export interface LocalEventBusOptions {
  rules: readonly EventRuleDefinition[];
  /** Where a matched event goes (the event-intake Lambda, invoked asynchronously). */
  deliver(rule: EventRuleDefinition, event: BusEvent): Promise<unknown>;
  /** Every event put, one JSON document per line, for `strata events`. */
  logFile: string;
  /** A delivery that failed for good, after its retries. */
  undeliverable(rule: EventRuleDefinition, event: BusEvent, error: unknown): void;
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
export class LocalEventBus {
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

  /** Puts one event on the bus; returns its id. */
  put(entry: NewBusEvent): string {
    const event: BusEvent = {
      version: "0",
      id: randomUUID(),
      "detail-type": entry.detailType,
      source: entry.source,
      account: LOCAL_ACCOUNT_ID,
      // EventBridge's envelope times have whole seconds.
      time: (entry.time ?? new Date()).toISOString().replace(/\.\d{3}Z$/, "Z"),
      region: localRegion(),
      resources: entry.resources ?? [],
      detail: entry.detail,
    };
    this.logged = this.logged.then(() =>
      appendFile(this.options.logFile, `${JSON.stringify(event)}\n`).catch(() => {}),
    );
    if (this.closed) return event.id;
    for (const rule of this.rules) {
      if (!matchesEventPattern(rule.eventPattern, event)) continue;
      const delivery = this.deliver(rule, event);
      this.deliveries.add(delivery);
      void delivery.finally(() => this.deliveries.delete(delivery));
    }
    return event.id;
  }

  /** Stops delivering and waits for the deliveries under way and the log. */
  async close(): Promise<void> {
    this.closed = true;
    await Promise.allSettled([...this.deliveries]);
    await this.logged;
  }

  private async deliver(rule: EventRuleDefinition, event: BusEvent): Promise<void> {
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
