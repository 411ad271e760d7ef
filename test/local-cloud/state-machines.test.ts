import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { allStates, parseDefinition } from "../../infra/local/step-functions/definitions.js";
import { strataFunctions, strataWorkflows } from "../../infra/workflows.js";
import { PACKAGE_ROOT } from "../cli/strata-process.js";

/**
 * The workflow files against the catalog both the local cloud and the CDK app build from: every
 * function they call is one Strata deploys, and every such placeholder is substituted.
 */
const substitutions = Object.fromEntries(strataFunctions.map((fn) => [fn.substitution, `arn:${fn.name}`]));
const definitions = strataWorkflows.map((workflow) => ({
  workflow,
  definition: parseDefinition(
    readFileSync(join(PACKAGE_ROOT, workflow.definitionFile), "utf8"),
    substitutions,
  ),
}));

/** A Task state's fields this test reads (the engine's types do not narrow on Type). */
const taskFields = (state: object) => state as { Resource?: string; Retry?: { ErrorEquals: string[] }[] };

describe("the state machine files", () => {
  it.each(definitions)(
    "$workflow.name: every Task calls a Strata function and retries transient errors",
    ({ definition }) => {
      const tasks = allStates(definition).filter(({ state }) => state.Type === "Task");
      expect(tasks.length).toBeGreaterThan(0);
      for (const { name, state } of tasks) {
        expect(
          strataFunctions.map((fn) => `arn:${fn.name}`),
          name,
        ).toContain(taskFields(state).Resource);
        const retried = (taskFields(state).Retry ?? []).flatMap((retrier) => retrier.ErrorEquals);
        expect(retried, name).toContain("Strata.Transient");
      }
    },
  );

  it("every Strata function but the two the bus and the schedule start is used by a workflow", () => {
    const used = new Set(
      definitions.flatMap(({ definition }) =>
        allStates(definition).flatMap(({ state }) =>
          state.Type === "Task" ? [taskFields(state).Resource] : [],
        ),
      ),
    );
    const unused = strataFunctions.filter((fn) => !used.has(`arn:${fn.name}`)).map((fn) => fn.name);
    expect(unused.sort()).toEqual(["event-intake", "health-sweep"]);
  });

  it.each(definitions)(
    "$workflow.name: writes no `IsNull: false`, which the local engine evaluates wrongly",
    ({ definition }) => {
      // aws-local-stepfunctions 3 answers false for {IsNull: false} whatever the value; {Not: {IsNull:
      // true}} means the same in AWS and works in both.
      expect(JSON.stringify(definition)).not.toContain('"IsNull":false');
    },
  );
});
