import {
  ConditionalCheckFailedException,
  ProvisionedThroughputExceededException,
} from "@aws-sdk/client-dynamodb";
import { DynamoDBDocumentClient, GetCommand, UpdateCommand } from "@aws-sdk/lib-dynamodb";
import { mockClient } from "aws-sdk-client-mock";
import { afterAll, afterEach, describe, expect, it } from "vitest";
import { EpochConflictError } from "../../core/state/errors.js";
import { StateStore } from "../../core/state/store.js";

/**
 * Failures dynalite cannot produce. The coordinator must tell "another writer won" (re-read, retry)
 * from "the store cannot be reached" (hold I/O, DESIGN.md invariant 4), so the store must not turn
 * the one into the other. The mock bypasses the SDK's own retries: this is what callers see once
 * those are used up.
 */
const dynamoDb = mockClient(DynamoDBDocumentClient);
const store = new StateStore({ tableName: "strata" });

afterEach(() => {
  dynamoDb.reset();
});

afterAll(() => {
  dynamoDb.restore();
  store.close();
});

const throttled = () =>
  new ProvisionedThroughputExceededException({
    message: "Rate of requests exceeds the allowed throughput",
    $metadata: {},
  });

describe("store errors from DynamoDB", () => {
  it("passes throttling of a compare-and-swap through unchanged, never as a conflict", async () => {
    dynamoDb.on(UpdateCommand).rejects(throttled());
    const update = store.volumes.updateIfEpoch("vol-1", 4, { attachedNode: "node-1" });
    await expect(update).rejects.toBeInstanceOf(ProvisionedThroughputExceededException);
    expect(dynamoDb.commandCalls(GetCommand)).toHaveLength(0);
  });

  it("passes throttling of the re-read after a lost race through, instead of guessing an epoch", async () => {
    dynamoDb
      .on(UpdateCommand)
      .rejects(
        new ConditionalCheckFailedException({ message: "The conditional request failed", $metadata: {} }),
      );
    dynamoDb.on(GetCommand).rejects(throttled());
    const update = store.volumes.updateIfEpoch("vol-1", 4, { attachedNode: "node-1" });
    await expect(update).rejects.toBeInstanceOf(ProvisionedThroughputExceededException);
    await expect(update).rejects.not.toBeInstanceOf(EpochConflictError);
    expect(dynamoDb.commandCalls(GetCommand)).toHaveLength(1);
  });
});
