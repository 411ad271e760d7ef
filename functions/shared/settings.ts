import { z } from "zod";

/**
 * What every Strata Lambda reads from its environment, named in one place: the CDK app sets these
 * in AWS, the local cloud in-process. A missing or malformed one fails the first invocation with a
 * message naming it, instead of a confusing SDK error later.
 */
const FunctionEnvironment = z.object({
  STRATA_STATE_TABLE: z.string().min(1),
  STRATA_CLUSTER_NAME: z.string().min(1),
  /** The bus Strata's events go to ("default" unless the stack made its own). */
  STRATA_EVENT_BUS: z.string().min(1).default("default"),
  STRATA_NODE_LOSS_STATE_MACHINE_ARN: z.string().min(1).optional(),
  STRATA_AZ_FAILURE_STATE_MACHINE_ARN: z.string().min(1).optional(),
  /** Heartbeats older than this make a node offline; shortened for tests and the demo. */
  STRATA_HEARTBEAT_TIMEOUT_MS: z.coerce.number().int().positive().optional(),
  /**
   * How many times one scheduled health-sweep invocation sweeps, evenly over the minute (see
   * health-sweep/minute.ts): 1 where a timer starts it often (local mode), 12 in AWS (every 5 s: a lost heartbeat seen within 15 s).
   */
  STRATA_SWEEPS_PER_INVOCATION: z.coerce.number().int().min(1).max(60).default(1),
});
export type FunctionSettings = z.infer<typeof FunctionEnvironment>;

export function functionSettings(env: NodeJS.ProcessEnv = process.env): FunctionSettings {
  const parsed = FunctionEnvironment.safeParse(env);
  if (!parsed.success) {
    const names = parsed.error.issues.map((issue) => issue.path.join(".")).join(", ");
    throw new Error(`the function's environment is incomplete or invalid: ${names}`);
  }
  return parsed.data;
}

/** The state machine a start needs, or an error naming the variable that should have held it. */
export function stateMachineArn(settings: FunctionSettings, workflow: "node-loss" | "az-failure"): string {
  const name =
    workflow === "node-loss" ? "STRATA_NODE_LOSS_STATE_MACHINE_ARN" : "STRATA_AZ_FAILURE_STATE_MACHINE_ARN";
  const arn = settings[name];
  if (arn === undefined) throw new Error(`${name} is not set: cannot start the ${workflow} workflow`);
  return arn;
}

/** The ARN Step Functions gives the execution `name` of the state machine `machineArn`. */
export const executionArn = (machineArn: string, name: string) =>
  `${machineArn.replace(":stateMachine:", ":execution:")}:${name}`;
