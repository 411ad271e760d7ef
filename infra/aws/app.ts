import { fileURLToPath } from "node:url";
import { App, Validations } from "aws-cdk-lib";
import { AwsSolutionsChecks } from "cdk-nag";
import { ControlPlaneStack } from "./control-plane-stack.js";
import { deploymentSettings } from "./settings.js";

/** The repository's root: functions/, state-machines/ and package-lock.json are found from it. */
export const PROJECT_ROOT = fileURLToPath(new URL("../../", import.meta.url));

/**
 * The CDK app: one stack, `strata-<cluster name>`, for the cluster named in the context, with
 * cdk-nag's AwsSolutions checks run on every synthesis (a finding fails it unless acknowledged
 * with a reason where the resource is made). Its acknowledgments are written into the template's
 * metadata too, for whoever audits the deployed stack.
 */
export function strataApp(app: App = new App()): { app: App; stack: ControlPlaneStack } {
  const settings = deploymentSettings((key) => app.node.tryGetContext(key));
  const stack = new ControlPlaneStack(app, `strata-${settings.clusterName}`, {
    settings,
    projectRoot: PROJECT_ROOT,
    description: `Strata's control plane for EKS cluster ${settings.clusterName}: state table, cloudsnap bucket and key, recovery and cloudsnap workflows, the agents' role`,
  });
  Validations.of(app).addPlugins(new AwsSolutionsChecks(app, { writeSuppressionsToCloudFormation: true }));
  return { app, stack };
}

if (process.argv[1] === fileURLToPath(import.meta.url)) strataApp().app.synth();
