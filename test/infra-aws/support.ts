import { readFileSync } from "node:fs";
import { join } from "node:path";
import { App } from "aws-cdk-lib";
import { Template } from "aws-cdk-lib/assertions";
import { PROJECT_ROOT, strataApp } from "../../infra/aws/app.js";
import type { ControlPlaneStack } from "../../infra/aws/control-plane-stack.js";

/** cdk.json's context: the defaults a bare `npx cdk synth` uses. */
export function cdkJsonContext(): Record<string, unknown> {
  const cdkJson = JSON.parse(readFileSync(join(PROJECT_ROOT, "cdk.json"), "utf8")) as {
    context: Record<string, unknown>;
  };
  return cdkJson.context;
}

export interface Synthesized {
  app: App;
  stack: ControlPlaneStack;
  template: Template;
}

/**
 * The app as `npx cdk synth` builds it, with cdk.json's context and `overrides`. Without
 * bundling (CDK's own switch, as for a stack not selected): the template is the same but for
 * the assets' hashes, and the bundles have their own suite (bundles.test.ts).
 */
export function synthesize(overrides: Record<string, unknown> = {}): Synthesized {
  const app = new App({
    context: { ...cdkJsonContext(), ...overrides, "aws:cdk:bundling-stacks": [] },
  });
  const { stack } = strataApp(app);
  return { app, stack, template: Template.fromStack(stack) };
}

/** A resolved CloudFormation value: what `Template.toJSON()` holds. */
export type CfnValue = unknown;

export interface CfnStatement {
  Effect: string;
  Action: string | string[];
  Resource: CfnValue;
  Condition?: Record<string, Record<string, CfnValue>>;
}

export const asList = <T>(value: T | T[] | undefined): T[] =>
  value === undefined ? [] : Array.isArray(value) ? value : [value];

/** Every statement of every AWS::IAM::Policy attached to the role with logical id `roleId`. */
export function statementsOfRole(template: Template, roleId: string): CfnStatement[] {
  const policies = template.findResources("AWS::IAM::Policy") as Record<
    string,
    { Properties: { Roles: { Ref: string }[]; PolicyDocument: { Statement: CfnStatement[] } } }
  >;
  return Object.values(policies)
    .filter((policy) => policy.Properties.Roles.some((role) => role.Ref === roleId))
    .flatMap((policy) => policy.Properties.PolicyDocument.Statement);
}
