import { Stack, Validations } from "aws-cdk-lib";
import type { IPrincipal, PolicyStatement } from "aws-cdk-lib/aws-iam";
import { flattenCfnReference } from "cdk-nag/lib/utils/flatten-cfn-reference.js";
import type { IConstruct } from "constructs";

/**
 * An IAM statement and, when a resource of it holds a `*`, why that is as narrow as IAM allows.
 * cdk-nag's AwsSolutions-IAM5 reports each such resource; the reason goes with the statement that
 * needs it, so a wildcard cannot be added without saying why.
 */
export interface ReasonedStatement {
  statement: PolicyStatement;
  /** Required when a resource holds `*`: the acknowledgment's reason. */
  wildcard?: string;
}

/** Adds `statements` to `principal`'s policy and acknowledges each wildcard resource on `owner`. */
export function allow(
  owner: IConstruct,
  principal: IPrincipal,
  statements: readonly ReasonedStatement[],
): void {
  for (const { statement, wildcard } of statements) {
    principal.addToPrincipalPolicy(statement);
    for (const resource of wildcardResources(owner, statement)) {
      if (wildcard === undefined)
        throw new Error(
          `${owner.node.path}: the statement for ${statement.actions.join(", ")} has the wildcard resource ${resource} and no reason for it`,
        );
      Validations.of(owner).acknowledge({ id: `AwsSolutions-IAM5[Resource::${resource}]`, reason: wildcard });
    }
  }
}

/** The statement's resources that hold a `*`, spelt as cdk-nag spells them in its findings. */
export function wildcardResources(scope: IConstruct, statement: PolicyStatement): string[] {
  const resolved: unknown = Stack.of(scope).resolve(statement.toStatementJson().Resource);
  const resources = Array.isArray(resolved) ? resolved : resolved === undefined ? [] : [resolved];
  return resources.map((resource) => flattenCfnReference(resource)).filter((flat) => flat.includes("*"));
}
