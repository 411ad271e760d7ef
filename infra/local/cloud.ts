import { readFile } from "node:fs/promises";
import { join } from "node:path";
import type { DescribeExecutionOutput } from "@aws-sdk/client-sfn";
import { writeJsonAtomic } from "../../agent/durable-file.js";
import { millisecondsFromEnv } from "../../core/env-settings.js";
import { strataEventRules } from "../event-rules.js";
import { ratePeriodMs, strataSchedules, type WorkflowScheduleDefinition } from "../schedules.js";
import { strataWorkflows } from "../workflows.js";
import { findBuilt, packageRoot } from "./agent-entry.js";
import { awsEvent } from "./aws/aws-event.js";
import { type LocalAwsEndpoints, startLocalAwsEndpoints } from "./aws/endpoints.js";
import { LocalKms } from "./aws/kms-endpoint.js";
import { type DriveChange, LocalEc2, type LocalEc2Listeners } from "./aws/local-ec2.js";
import { EVENTS_FILE, workflowMachine } from "./cloud-names.js";
import { LocalEventBus } from "./event-bus/bus.js";
import { type LocalFunctions, loadLocalFunctions } from "./lambda/local-functions.js";
import { loadDefinition } from "./step-functions/definitions.js";
import { LocalStepFunctions } from "./step-functions/local-step-functions.js";

export { EVENTS_FILE, workflowMachine };

/** `<dir>/ec2.json`: the local cloud's instances and drives, so they outlive a restart. */
export const EC2_FILE = "ec2.json";
/** `<dir>/kms.json`: the local KMS's keys, so what they wrapped still unwraps after a restart. */
export const KMS_FILE = "kms.json";

/** How the local cloud's schedules and waits run; shortened for tests and the demo. */
export interface LocalCloudTiming {
  /** The health sweep's period (a minute in AWS). */
  healthSweepMs: number;
  /**
   * How often each schedule of infra/schedules.ts starts its workflow; absent, at the schedule's own
   * rate, as in AWS. Tests and the demo shorten it, or lengthen it to start workflows themselves.
   */
  scheduleMs?: number;
  /** Every Wait state of the workflows waits at most this long. */
  waitCapMs: number;
  /** Every Retry waits at most this long between attempts. */
  retryCapMs: number;
}

/**
 * Local defaults: a sweep every 2 s, so a lost node is seen within the heartbeat timeout and a
 * beat; waits and retries of seconds, because everything here is on one machine. The environment
 * (STRATA_HEALTH_SWEEP_MS, STRATA_SCHEDULE_MS, STRATA_WORKFLOW_WAIT_CAP_MS,
 * STRATA_WORKFLOW_RETRY_CAP_MS) changes them. The schedules run at their own rates, as in AWS.
 */
export function localCloudTiming(env: NodeJS.ProcessEnv = process.env): LocalCloudTiming {
  const scheduleMs = millisecondsFromEnv("STRATA_SCHEDULE_MS", 0, env);
  return {
    healthSweepMs: millisecondsFromEnv("STRATA_HEALTH_SWEEP_MS", 2_000, env),
    ...(scheduleMs === 0 ? {} : { scheduleMs }),
    waitCapMs: millisecondsFromEnv("STRATA_WORKFLOW_WAIT_CAP_MS", 2_000, env),
    retryCapMs: millisecondsFromEnv("STRATA_WORKFLOW_RETRY_CAP_MS", 1_000, env),
  };
}

export interface LocalCloudOptions {
  dir: string;
  clusterName: string;
  stateTable: string;
  /** One node group per zone. */
  zones: readonly string[];
  /**
   * A terminate lifecycle hook on every node group, as EKS clusters that drain nodes have: a lost
   * instance then waits in Terminating:Wait until node-loss completes the action.
   */
  terminateLifecycleHook?: string;
  timing: LocalCloudTiming;
  /** More of what the stack gives its functions: the cloudsnap bucket and its S3 endpoint. */
  functionEnvironment?: Record<string, string>;
  report(line: string): void;
  /** A drive moved: the supervisor starts or stops serving its drive set on that instance. */
  onDriveChange(change: DriveChange): void;
  onExecutionChange?(execution: DescribeExecutionOutput): void;
}

/**
 * The AWS side of local mode, in the supervisor's process: the EC2/Auto Scaling/EKS world of the
 * local instances and drives, the event bus with Strata's rules, the state machines from
 * state-machines/ with the Lambdas loaded from their bundles, the health sweep on a timer, and
 * the AWS-compatible endpoints through which the functions and the CLI reach it all with the real
 * SDK clients.
 */
export class LocalCloud {
  private sweep: NodeJS.Timeout | undefined;
  private sweeping = false;
  private schedules: NodeJS.Timeout[] = [];
  /** The execution each schedule started last, while it runs. */
  private readonly scheduled = new Map<string, string>();
  private saving: Promise<void> = Promise.resolve();

  private constructor(
    private readonly options: LocalCloudOptions,
    readonly ec2: LocalEc2,
    readonly bus: LocalEventBus,
    readonly stepFunctions: LocalStepFunctions,
    private readonly functions: LocalFunctions,
    private readonly endpoints: LocalAwsEndpoints,
  ) {}

  static async start(options: LocalCloudOptions): Promise<LocalCloud> {
    const { dir, report } = options;
    let deliverTo: LocalFunctions | undefined;
    const bus = new LocalEventBus({
      rules: strataEventRules,
      logFile: join(dir, EVENTS_FILE),
      deliver: async (_rule, event) => deliverTo?.invoke("event-intake", event),
      undeliverable: (rule, event, error) =>
        report(
          `event ${event["detail-type"]} (${event.id}) could not be delivered by rule ${rule.name}: ${(error as Error).message}`,
        ),
    });
    let cloud: LocalCloud | undefined;
    const listeners: LocalEc2Listeners = {
      onEvent: (event) => {
        bus.publish(event);
        cloud?.save();
      },
      onChange: (change) => {
        options.onDriveChange(change);
        cloud?.save();
      },
    };
    const ec2 = await loadEc2(dir, options, listeners);

    // The functions read these once loaded, as a Lambda reads the environment the stack gave it.
    Object.assign(process.env, {
      STRATA_STATE_TABLE: options.stateTable,
      STRATA_CLUSTER_NAME: options.clusterName,
      STRATA_EVENT_BUS: "default",
      POWERTOOLS_METRICS_NAMESPACE: "Strata",
      // No CloudWatch here: metrics would only print EMF documents on the terminal.
      POWERTOOLS_METRICS_DISABLED: "true",
      // The terminal of `cluster up` shows the Lambdas' errors; what they do is in the workflow history.
      POWERTOOLS_LOG_LEVEL: process.env.STRATA_LAMBDA_LOG_LEVEL ?? "ERROR",
      ...options.functionEnvironment,
    });
    const functions = await loadLocalFunctions(findBuilt("dist/functions", "the Strata Lambdas"));
    deliverTo = functions;
    const stateMachines = await Promise.all(
      strataWorkflows.map(async (workflow) => ({
        name: workflowMachine(workflow.name),
        definition: await loadDefinition(
          join(packageRoot(), workflow.definitionFile),
          functions.substitutions,
        ),
      })),
    );
    const stepFunctions = new LocalStepFunctions({
      stateMachines,
      functions: functions.byArn,
      waitTimeCapMs: options.timing.waitCapMs,
      retryIntervalCapMs: options.timing.retryCapMs,
      ...(options.onExecutionChange ? { onExecutionChange: options.onExecutionChange } : {}),
    });
    const kmsFile = join(dir, KMS_FILE);
    const kms: LocalKms = await LocalKms.load(kmsFile, undefined, () => {
      cloud?.persist(KMS_FILE, () => kms.saveTo(kmsFile));
    });
    const endpoints = await startLocalAwsEndpoints({ stepFunctions, eventBus: bus, ec2, kms });
    Object.assign(process.env, endpoints.environment, {
      STRATA_NODE_LOSS_STATE_MACHINE_ARN: stepFunctions.stateMachineArn(workflowMachine("node-loss")),
      STRATA_AZ_FAILURE_STATE_MACHINE_ARN: stepFunctions.stateMachineArn(workflowMachine("az-failure")),
    });
    cloud = new LocalCloud(options, ec2, bus, stepFunctions, functions, endpoints);
    cloud.save();
    cloud.sweep = setInterval(() => cloud?.runHealthSweep(), options.timing.healthSweepMs);
    cloud.schedules = strataSchedules.map((schedule) =>
      setInterval(() => cloud?.startScheduled(schedule), options.timing.scheduleMs ?? ratePeriodMs(schedule)),
    );
    return cloud;
  }

  /** The endpoint variables for the CLI and anything else that calls the local cloud. */
  get environment(): Record<string, string> {
    return this.endpoints.environment;
  }

  /**
   * Stops reacting: no more sweeps, running executions aborted, no more deliveries. The cluster
   * calls it before it stops its agents, whose going away must not read as nodes lost.
   */
  async stopAutomation(): Promise<void> {
    clearInterval(this.sweep);
    for (const timer of this.schedules) clearInterval(timer);
    await this.stepFunctions.close();
    await this.bus.close();
  }

  async close(): Promise<void> {
    await this.stopAutomation();
    await this.endpoints.close();
    this.ec2.close();
    this.save();
    await this.saving;
  }

  /** What EventBridge Scheduler would deliver every minute in AWS. */
  private runHealthSweep(): void {
    if (this.sweeping) return;
    this.sweeping = true;
    const scheduled = awsEvent("aws.events", "Scheduled Event", [], {});
    this.functions
      .invoke("health-sweep", scheduled)
      .catch((error: unknown) => this.options.report(`health sweep failed: ${(error as Error).message}`))
      .finally(() => {
        this.sweeping = false;
      });
  }

  /**
   * What a schedule of infra/schedules.ts does in AWS. A run still going when the next is due is left
   * to finish instead (on one machine, overlapping runs only compete for it); in AWS they may
   * overlap, which the workflows allow (the cloudsnap workflow skips a volume being uploaded).
   */
  private startScheduled(schedule: WorkflowScheduleDefinition): void {
    const previous = this.scheduled.get(schedule.name);
    const stateMachineArn = this.stepFunctions.stateMachineArn(workflowMachine(schedule.workflow));
    void (async () => {
      if (previous !== undefined) {
        const { status } = await this.stepFunctions.describeExecution({ executionArn: previous });
        if (status === "RUNNING") return;
      }
      const started = await this.stepFunctions.startExecution({
        stateMachineArn,
        name: `${schedule.name}-${new Date().toISOString().replace(/[-:.]/g, "")}`,
        input: JSON.stringify(schedule.input),
      });
      if (started.executionArn !== undefined) this.scheduled.set(schedule.name, started.executionArn);
    })().catch((error: unknown) =>
      this.options.report(
        `the ${schedule.name} schedule could not start its workflow: ${(error as Error).message}`,
      ),
    );
  }

  private save(): void {
    const snapshot = this.ec2.snapshot();
    this.persist(EC2_FILE, () => writeJsonAtomic(join(this.options.dir, EC2_FILE), snapshot));
  }

  /** Writes one of the cloud's files after those already queued, reporting a failure. */
  private persist(file: string, write: () => Promise<void>): void {
    this.saving = this.saving
      .then(write)
      .catch((error: unknown) => this.options.report(`cannot save ${file}: ${(error as Error).message}`));
  }
}

async function loadEc2(
  dir: string,
  options: LocalCloudOptions,
  listeners: LocalEc2Listeners,
): Promise<LocalEc2> {
  let text: string | undefined;
  try {
    text = await readFile(join(dir, EC2_FILE), "utf8");
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== "ENOENT") throw error;
  }
  if (text !== undefined) return LocalEc2.restore(JSON.parse(text) as unknown, listeners);
  return LocalEc2.create(
    {
      clusterName: options.clusterName,
      nodegroups: options.zones.map((zone) => ({
        zone,
        ...(options.terminateLifecycleHook === undefined
          ? {}
          : { terminateLifecycleHook: options.terminateLifecycleHook }),
      })),
    },
    listeners,
  );
}
