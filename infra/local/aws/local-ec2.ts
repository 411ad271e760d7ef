import { randomBytes, randomUUID } from "node:crypto";
import { z } from "zod";
import { type AwsEvent, awsEvent } from "./aws-event.js";
import { LOCAL_ACCOUNT_ID, localRegion } from "./identity.js";
import { AwsServiceError } from "./service-error.js";

/**
 * The local cloud's EC2, Auto Scaling and EKS world: the instances the local nodes run on, the
 * drives ("volumes") they hold, the node groups (one per zone) the instances belong to, and the
 * lifecycle actions an Auto Scaling group waits on. The supervisor changes it (a node started, a
 * node killed); the EC2, Auto Scaling and EKS endpoints read it and change it as the workflows ask.
 * Every change an AWS account would see as an event is emitted as that event, in AWS's envelope.
 *
 * A local drive is a directory; its path is the volume's `strata:drive-path` tag, so moving a
 * volume between instances (attach/detach, reported through onChange) is how the supervisor moves
 * a drive set to a replacement node.
 */

export const DRIVE_PATH_TAG = "strata:drive-path";

export type InstanceStateName =
  | "pending"
  | "running"
  | "shutting-down"
  | "terminated"
  | "stopping"
  | "stopped";

/** EC2's state codes: the low byte of `instanceState.code`. */
export const INSTANCE_STATE_CODES: Record<InstanceStateName, number> = {
  pending: 0,
  running: 16,
  "shutting-down": 32,
  terminated: 48,
  stopping: 64,
  stopped: 80,
};

/** Where an instance is in its Auto Scaling group's lifecycle, when a hook holds it. */
export type AutoScalingLifecycleState = "Pending:Wait" | "InService" | "Terminating:Wait";

export interface LocalInstance {
  id: string;
  zone: string;
  state: InstanceStateName;
  tags: Record<string, string>;
  nodegroup?: string;
  lifecycleState?: AutoScalingLifecycleState;
  /** Its group is scaling in by terminating it: the group's desired capacity no longer counts it. */
  scalingIn?: boolean;
  /** Epoch milliseconds. */
  launchTime: number;
  /** Every local node listens on loopback. */
  privateIp: string;
}

export type AttachmentState = "attaching" | "attached" | "detaching" | "detached";

export interface VolumeAttachment {
  instanceId: string;
  device: string;
  state: AttachmentState;
  /** Epoch milliseconds. */
  attachTime: number;
  /**
   * Deleted when its instance terminates, as a launch template's root volume is; absent, false, as
   * AttachVolume always leaves it (and drives are made: they outlive their instance).
   */
  deleteOnTermination?: boolean;
}

export interface LocalVolume {
  id: string;
  zone: string;
  sizeBytes: number;
  tags: Record<string, string>;
  /** Epoch milliseconds. */
  createTime: number;
  attachment?: VolumeAttachment;
}

export const volumeStatus = (volume: LocalVolume) => (volume.attachment ? "in-use" : "available");

export interface LocalNodegroup {
  name: string;
  zone: string;
  autoScalingGroupName: string;
  /** The ids in the node group's and the group's ARNs, fixed when the world is created. */
  arnId: string;
  minSize: number;
  maxSize: number;
  labels: Record<string, string>;
  tags: Record<string, string>;
  /** Epoch milliseconds. */
  createdAt: number;
  /** The hooks configured on the node group's Auto Scaling group, by name. */
  launchLifecycleHook?: string;
  terminateLifecycleHook?: string;
}

export type LifecycleTransition =
  | "autoscaling:EC2_INSTANCE_LAUNCHING"
  | "autoscaling:EC2_INSTANCE_TERMINATING";
export type LifecycleActionResult = "CONTINUE" | "ABANDON";

/** An instance an Auto Scaling group holds in a wait state until the hook's action completes. */
export interface PendingLifecycleAction {
  token: string;
  hookName: string;
  autoScalingGroupName: string;
  instanceId: string;
  transition: LifecycleTransition;
  /** Epoch milliseconds: the hook's timeout, after which the default result applies. */
  deadline: number;
}

/** A drive that moved: the supervisor serves (or stops serving) the drive set on that instance. */
export interface DriveChange {
  kind: "attached" | "detached";
  volumeId: string;
  instanceId: string;
  device: string;
  tags: Record<string, string>;
}

/**
 * Called synchronously, in the order things happen, from inside the change that caused them (an
 * endpoint's request included); a listener that has slow work to do (putting the event on the
 * bus, moving a drive set) queues it rather than doing it there.
 */
export interface LocalEc2Listeners {
  onEvent?(event: AwsEvent): void;
  onChange?(change: DriveChange): void;
}

export interface NodegroupSpec {
  zone: string;
  /** Default: `<cluster>-<zone>`. */
  name?: string;
  minSize?: number;
  maxSize?: number;
  labels?: Record<string, string>;
  tags?: Record<string, string>;
  launchLifecycleHook?: string;
  terminateLifecycleHook?: string;
}

export interface LocalEc2Options {
  clusterName: string;
  nodegroups: NodegroupSpec[];
  /** How long a hook holds an instance before its default result applies; AWS's default is one hour. */
  lifecycleHookTimeoutMs?: number;
}

const DEFAULT_HOOK_TIMEOUT_MS = 3600_000;
/** AWS's default result for a hook that times out; for a terminating instance both results terminate it. */
const HOOK_DEFAULT_RESULT: LifecycleActionResult = "ABANDON";
const LOOPBACK = "127.0.0.1";

const hexId = (prefix: "i" | "vol") => `${prefix}-${randomBytes(9).toString("hex").slice(0, 17)}`;

export class LocalEc2 {
  private readonly instanceMap = new Map<string, LocalInstance>();
  private readonly volumeMap = new Map<string, LocalVolume>();
  private readonly nodegroupMap = new Map<string, LocalNodegroup>();
  private readonly actions = new Map<string, PendingLifecycleAction>();
  private readonly timers = new Map<string, NodeJS.Timeout>();

  private constructor(
    readonly clusterName: string,
    private readonly hookTimeoutMs: number,
    private readonly listeners: LocalEc2Listeners,
  ) {}

  static create(options: LocalEc2Options, listeners: LocalEc2Listeners = {}): LocalEc2 {
    const world = new LocalEc2(
      options.clusterName,
      options.lifecycleHookTimeoutMs ?? DEFAULT_HOOK_TIMEOUT_MS,
      listeners,
    );
    for (const spec of options.nodegroups) {
      const name = spec.name ?? `${options.clusterName}-${spec.zone}`;
      world.nodegroupMap.set(name, {
        name,
        zone: spec.zone,
        autoScalingGroupName: `eks-${name}`,
        arnId: randomUUID(),
        minSize: spec.minSize ?? 0,
        maxSize: spec.maxSize ?? 10,
        labels: { "topology.kubernetes.io/zone": spec.zone, ...spec.labels },
        tags: { ...spec.tags },
        createdAt: Date.now(),
        ...(spec.launchLifecycleHook ? { launchLifecycleHook: spec.launchLifecycleHook } : {}),
        ...(spec.terminateLifecycleHook ? { terminateLifecycleHook: spec.terminateLifecycleHook } : {}),
      });
    }
    return world;
  }

  // --- reading: the live records, to be changed only through the methods below ---

  instances(): LocalInstance[] {
    return [...this.instanceMap.values()];
  }

  volumes(): LocalVolume[] {
    return [...this.volumeMap.values()];
  }

  nodegroups(): LocalNodegroup[] {
    return [...this.nodegroupMap.values()];
  }

  pendingLifecycleActions(): PendingLifecycleAction[] {
    return [...this.actions.values()];
  }

  instance(id: string): LocalInstance {
    const instance = this.instanceMap.get(id);
    if (!instance)
      throw new AwsServiceError("InvalidInstanceID.NotFound", `The instance ID '${id}' does not exist`);
    return instance;
  }

  volume(id: string): LocalVolume {
    const volume = this.volumeMap.get(id);
    if (!volume) throw new AwsServiceError("InvalidVolume.NotFound", `The volume '${id}' does not exist.`);
    return volume;
  }

  nodegroup(name: string): LocalNodegroup | undefined {
    return this.nodegroupMap.get(name);
  }

  /**
   * The zones of the node groups, with ids the way AWS gives them (`use1-az1`: the same physical
   * zone in every account, which zonal autoshift names): here `<region>-az<n>` in name order.
   */
  availabilityZones(): { name: string; id: string }[] {
    const names = [...new Set(this.nodegroups().map((group) => group.zone))].sort();
    return names.map((name, index) => ({ name, id: `${localRegion()}-az${index + 1}` }));
  }

  /**
   * The node group's desired capacity: the instances its Auto Scaling group counts (every one not
   * terminated), less one a scale-in is removing. An instance lost otherwise still counts, so the
   * group replaces it.
   */
  nodegroupSize(name: string): number {
    return this.instances().filter((i) => i.nodegroup === name && i.state !== "terminated" && !i.scalingIn)
      .length;
  }

  // --- instances ---

  /**
   * Starts an instance: pending, then running. In a node group it carries the tags EKS and Auto
   * Scaling put on their instances, and a launch hook holds it in Pending:Wait until completed.
   */
  launchInstance(spec: { zone?: string; nodegroup?: string; tags?: Record<string, string> }): LocalInstance {
    const group = spec.nodegroup === undefined ? undefined : this.nodegroupMap.get(spec.nodegroup);
    if (spec.nodegroup !== undefined && !group) throw new Error(`no node group ${spec.nodegroup}`);
    const zone = spec.zone ?? group?.zone;
    if (!zone) throw new Error("an instance needs a zone or a node group");
    if (group && group.zone !== zone)
      throw new Error(`node group ${group.name} is in ${group.zone}, not ${zone}`);
    const instance: LocalInstance = {
      id: hexId("i"),
      zone,
      state: "pending",
      tags: {
        ...(group
          ? {
              "aws:autoscaling:groupName": group.autoScalingGroupName,
              "eks:cluster-name": this.clusterName,
              "eks:nodegroup-name": group.name,
              [`kubernetes.io/cluster/${this.clusterName}`]: "owned",
            }
          : {}),
        ...spec.tags,
      },
      ...(group ? { nodegroup: group.name, lifecycleState: "InService" as const } : {}),
      launchTime: Date.now(),
      privateIp: LOOPBACK,
    };
    this.instanceMap.set(instance.id, instance);
    this.emitStateChange(instance);
    this.changeState(instance, "running");
    if (group?.launchLifecycleHook)
      this.hold(instance, group, group.launchLifecycleHook, "autoscaling:EC2_INSTANCE_LAUNCHING");
    return instance;
  }

  /**
   * Scale-in (or a lost node): the node group's Auto Scaling group terminates the instance. With a
   * terminate hook, the instance waits in Terminating:Wait (still running, as in AWS) until the
   * action is completed or times out; without one it shuts down at once. Repeating it is harmless.
   */
  terminateInstance(id: string): LocalInstance {
    const instance = this.instance(id);
    if (instance.state === "terminated" || instance.state === "shutting-down") return instance;
    if (instance.lifecycleState === "Terminating:Wait") return instance;
    const group = instance.nodegroup === undefined ? undefined : this.nodegroupMap.get(instance.nodegroup);
    if (group?.terminateLifecycleHook && instance.state === "running") {
      this.dropActionsOf(instance.id);
      this.hold(instance, group, group.terminateLifecycleHook, "autoscaling:EC2_INSTANCE_TERMINATING");
      return instance;
    }
    this.shutDown(instance);
    return instance;
  }

  /**
   * A scale-in: the node group's desired capacity drops by one and its Auto Scaling group terminates
   * this instance (through its terminate hook, as terminateInstance does); nothing replaces it.
   */
  scaleIn(id: string): LocalInstance {
    const instance = this.instance(id);
    if (instance.nodegroup === undefined) throw new Error(`instance ${id} is in no node group`);
    instance.scalingIn = true;
    return this.terminateInstance(id);
  }

  /** EC2's TerminateInstances: terminates at once, hooks or not, and says which state it left. */
  terminateNow(id: string): { previous: InstanceStateName; current: InstanceStateName } {
    const instance = this.instance(id);
    const previous = instance.state;
    if (previous !== "terminated") {
      this.dropActionsOf(id);
      this.shutDown(instance);
    }
    return { previous, current: previous === "terminated" ? "terminated" : "shutting-down" };
  }

  /** The node's process stopped: the instance stops, its drives stay attached. */
  stopInstance(id: string): LocalInstance {
    const instance = this.instance(id);
    if (instance.state !== "running" && instance.state !== "pending")
      throw new AwsServiceError(
        "IncorrectInstanceState",
        `The instance '${id}' is not in a state from which it can be stopped.`,
      );
    this.changeState(instance, "stopping");
    this.changeState(instance, "stopped");
    return instance;
  }

  startInstance(id: string): LocalInstance {
    const instance = this.instance(id);
    if (instance.state !== "stopped")
      throw new AwsServiceError(
        "IncorrectInstanceState",
        `The instance '${id}' is not in a state from which it can be started.`,
      );
    this.changeState(instance, "pending");
    this.changeState(instance, "running");
    return instance;
  }

  // --- volumes ---

  createVolume(spec: {
    zone: string;
    sizeBytes: number;
    tags?: Record<string, string>;
    attachTo?: { instanceId: string; device?: string; deleteOnTermination?: boolean };
  }): LocalVolume {
    const volume: LocalVolume = {
      id: hexId("vol"),
      zone: spec.zone,
      sizeBytes: spec.sizeBytes,
      tags: { ...spec.tags },
      createTime: Date.now(),
    };
    this.volumeMap.set(volume.id, volume);
    if (spec.attachTo)
      this.attachVolume({
        volumeId: volume.id,
        instanceId: spec.attachTo.instanceId,
        device: spec.attachTo.device ?? this.freeDevice(spec.attachTo.instanceId),
      });
    if (spec.attachTo?.deleteOnTermination) volume.attachment!.deleteOnTermination = true;
    return this.volume(volume.id);
  }

  /**
   * Attaches a volume with EC2's rules: same zone, the volume free, the instance running, the
   * device name unused. A local drive is a directory, so the attachment completes at once; the
   * caller still reports `attaching`, the state AWS answers AttachVolume with.
   */
  attachVolume(request: { volumeId: string; instanceId: string; device: string }): VolumeAttachment {
    const volume = this.volume(request.volumeId);
    const instance = this.instance(request.instanceId);
    if (volume.attachment)
      throw new AwsServiceError(
        "VolumeInUse",
        `${volume.id} is already attached to an instance (${volume.attachment.instanceId})`,
      );
    if (instance.state !== "running")
      throw new AwsServiceError("IncorrectState", `Instance '${instance.id}' is not 'running'.`);
    if (volume.zone !== instance.zone)
      throw new AwsServiceError(
        "InvalidVolume.ZoneMismatch",
        `The volume '${volume.id}' is not in the same availability zone as instance '${instance.id}'`,
      );
    if (
      this.volumes().some(
        (v) => v.attachment?.instanceId === instance.id && v.attachment.device === request.device,
      )
    )
      throw new AwsServiceError(
        "InvalidParameterValue",
        `Attachment point ${request.device} is already in use`,
      );
    volume.attachment = {
      instanceId: instance.id,
      device: request.device,
      state: "attached",
      attachTime: Date.now(),
    };
    this.listeners.onChange?.({
      kind: "attached",
      volumeId: volume.id,
      instanceId: instance.id,
      device: request.device,
      tags: { ...volume.tags },
    });
    return volume.attachment;
  }

  /** Detaches a volume (at once, like attaching); an instance id, when given, must be the one it is on. */
  detachVolume(request: { volumeId: string; instanceId?: string; device?: string }): VolumeAttachment {
    const volume = this.volume(request.volumeId);
    const attachment = volume.attachment;
    if (!attachment)
      throw new AwsServiceError("IncorrectState", `Volume '${volume.id}' is in the 'available' state.`);
    if (request.instanceId !== undefined) this.instance(request.instanceId);
    if (
      (request.instanceId !== undefined && request.instanceId !== attachment.instanceId) ||
      (request.device !== undefined && request.device !== attachment.device)
    )
      throw new AwsServiceError(
        "InvalidAttachment.NotFound",
        `Volume '${volume.id}' is not attached to instance '${request.instanceId ?? attachment.instanceId}' at ${request.device ?? attachment.device}.`,
      );
    delete volume.attachment;
    this.listeners.onChange?.({
      kind: "detached",
      volumeId: volume.id,
      instanceId: attachment.instanceId,
      device: attachment.device,
      tags: { ...volume.tags },
    });
    return { ...attachment, state: "detaching" };
  }

  /**
   * EC2's CreateTags on instances and volumes: every id must exist or nothing is tagged; a tag
   * already there takes the new value. A drive set's agent names its new drives this way.
   */
  createTags(resourceIds: string[], tags: Record<string, string>): void {
    const resources = resourceIds.map((id) => (id.startsWith("vol-") ? this.volume(id) : this.instance(id)));
    for (const resource of resources) Object.assign(resource.tags, tags);
  }

  // --- Auto Scaling lifecycle actions ---

  /**
   * CompleteLifecycleAction: the action is found by token or by instance id, within the group and
   * hook named. A terminating instance terminates whatever the result; a launching one goes into
   * service on CONTINUE and is terminated on ABANDON.
   */
  completeLifecycleAction(request: {
    autoScalingGroupName: string;
    hookName: string;
    token?: string;
    instanceId?: string;
    result: LifecycleActionResult;
  }): void {
    const action = this.pendingLifecycleActions().find(
      (a) =>
        a.autoScalingGroupName === request.autoScalingGroupName &&
        a.hookName === request.hookName &&
        (request.token !== undefined ? a.token === request.token : a.instanceId === request.instanceId),
    );
    if (!action)
      throw new AwsServiceError(
        "ValidationError",
        request.token !== undefined
          ? `No active Lifecycle Action found with token ${request.token}`
          : `No active Lifecycle Action found with instance ID ${request.instanceId}`,
      );
    this.settle(action, request.result);
  }

  /** Stops the hook timers; the world itself stays readable (and can be snapshotted). */
  close(): void {
    for (const timer of this.timers.values()) clearTimeout(timer);
    this.timers.clear();
  }

  // --- snapshot ---

  snapshot(): LocalEc2Snapshot {
    return structuredClone({
      version: 1 as const,
      clusterName: this.clusterName,
      hookTimeoutMs: this.hookTimeoutMs,
      nodegroups: this.nodegroups(),
      instances: this.instances(),
      volumes: this.volumes(),
      lifecycleActions: this.pendingLifecycleActions(),
    });
  }

  /** Brings back a saved world; hooks still waiting resume with the time they had left. */
  static restore(snapshot: unknown, listeners: LocalEc2Listeners = {}): LocalEc2 {
    const saved = LocalEc2Snapshot.parse(snapshot);
    const world = new LocalEc2(saved.clusterName, saved.hookTimeoutMs, listeners);
    for (const group of saved.nodegroups) world.nodegroupMap.set(group.name, group);
    for (const instance of saved.instances) world.instanceMap.set(instance.id, instance);
    for (const volume of saved.volumes) world.volumeMap.set(volume.id, volume);
    for (const action of saved.lifecycleActions) world.arm(action);
    return world;
  }

  // --- internals ---

  private hold(
    instance: LocalInstance,
    group: LocalNodegroup,
    hookName: string,
    transition: LifecycleTransition,
  ) {
    const action: PendingLifecycleAction = {
      token: randomUUID(),
      hookName,
      autoScalingGroupName: group.autoScalingGroupName,
      instanceId: instance.id,
      transition,
      deadline: Date.now() + this.hookTimeoutMs,
    };
    instance.lifecycleState =
      transition === "autoscaling:EC2_INSTANCE_LAUNCHING" ? "Pending:Wait" : "Terminating:Wait";
    this.arm(action);
    const launching = transition === "autoscaling:EC2_INSTANCE_LAUNCHING";
    this.listeners.onEvent?.(
      awsEvent(
        "aws.autoscaling",
        launching ? "EC2 Instance-launch Lifecycle Action" : "EC2 Instance-terminate Lifecycle Action",
        [this.autoScalingGroupArn(group)],
        {
          LifecycleActionToken: action.token,
          AutoScalingGroupName: group.autoScalingGroupName,
          LifecycleHookName: hookName,
          EC2InstanceId: instance.id,
          LifecycleTransition: transition,
          Origin: launching ? "EC2" : "AutoScalingGroup",
          Destination: launching ? "AutoScalingGroup" : "EC2",
        },
      ),
    );
  }

  private arm(action: PendingLifecycleAction) {
    this.actions.set(action.token, action);
    const timer = setTimeout(
      () => this.settle(action, HOOK_DEFAULT_RESULT),
      Math.max(0, action.deadline - Date.now()),
    );
    timer.unref();
    this.timers.set(action.token, timer);
  }

  private settle(action: PendingLifecycleAction, result: LifecycleActionResult) {
    this.forget(action.token);
    const instance = this.instanceMap.get(action.instanceId);
    if (!instance || instance.state === "terminated") return;
    if (action.transition === "autoscaling:EC2_INSTANCE_LAUNCHING" && result === "CONTINUE") {
      instance.lifecycleState = "InService";
      return;
    }
    this.shutDown(instance);
  }

  private forget(token: string) {
    clearTimeout(this.timers.get(token));
    this.timers.delete(token);
    this.actions.delete(token);
  }

  private dropActionsOf(instanceId: string) {
    for (const action of this.pendingLifecycleActions())
      if (action.instanceId === instanceId) this.forget(action.token);
  }

  /**
   * shutting-down, then terminated; its drives are detached (they outlive it, as data volumes do),
   * and the volumes made to be deleted with it are.
   */
  private shutDown(instance: LocalInstance) {
    if (instance.state !== "shutting-down") this.changeState(instance, "shutting-down");
    for (const volume of this.volumes())
      if (volume.attachment?.instanceId === instance.id) {
        const deleted = volume.attachment.deleteOnTermination === true;
        this.detachVolume({ volumeId: volume.id });
        if (deleted) this.volumeMap.delete(volume.id);
      }
    delete instance.lifecycleState;
    this.changeState(instance, "terminated");
  }

  private changeState(instance: LocalInstance, state: InstanceStateName) {
    instance.state = state;
    this.emitStateChange(instance);
  }

  private emitStateChange(instance: LocalInstance) {
    this.listeners.onEvent?.(
      awsEvent("aws.ec2", "EC2 Instance State-change Notification", [this.instanceArn(instance.id)], {
        "instance-id": instance.id,
        state: instance.state,
      }),
    );
  }

  private freeDevice(instanceId: string): string {
    const used = new Set(
      this.volumes()
        .filter((v) => v.attachment?.instanceId === instanceId)
        .map((v) => v.attachment!.device),
    );
    for (const letter of "fghijklmnopqrstuvwxyz")
      if (!used.has(`/dev/xvd${letter}`)) return `/dev/xvd${letter}`;
    throw new AwsServiceError("AttachmentLimitExceeded", `instance ${instanceId} has no free device name`);
  }

  instanceArn(id: string): string {
    return `arn:aws:ec2:${localRegion()}:${LOCAL_ACCOUNT_ID}:instance/${id}`;
  }

  autoScalingGroupArn(group: LocalNodegroup): string {
    return `arn:aws:autoscaling:${localRegion()}:${LOCAL_ACCOUNT_ID}:autoScalingGroup:${group.arnId}:autoScalingGroupName/${group.autoScalingGroupName}`;
  }

  nodegroupArn(group: LocalNodegroup): string {
    return `arn:aws:eks:${localRegion()}:${LOCAL_ACCOUNT_ID}:nodegroup/${this.clusterName}/${group.name}/${group.arnId}`;
  }
}

const Tags = z.record(z.string(), z.string());

/** What snapshot() writes and restore() reads back: plain JSON, checked on the way in. */
export const LocalEc2Snapshot = z.object({
  version: z.literal(1),
  clusterName: z.string(),
  hookTimeoutMs: z.number(),
  nodegroups: z.array(
    z.object({
      name: z.string(),
      zone: z.string(),
      autoScalingGroupName: z.string(),
      arnId: z.string(),
      minSize: z.number(),
      maxSize: z.number(),
      labels: Tags,
      tags: Tags,
      createdAt: z.number(),
      launchLifecycleHook: z.string().optional(),
      terminateLifecycleHook: z.string().optional(),
    }),
  ),
  instances: z.array(
    z.object({
      id: z.string(),
      zone: z.string(),
      state: z.enum(["pending", "running", "shutting-down", "terminated", "stopping", "stopped"]),
      tags: Tags,
      nodegroup: z.string().optional(),
      lifecycleState: z.enum(["Pending:Wait", "InService", "Terminating:Wait"]).optional(),
      scalingIn: z.boolean().optional(),
      launchTime: z.number(),
      privateIp: z.string(),
    }),
  ),
  volumes: z.array(
    z.object({
      id: z.string(),
      zone: z.string(),
      sizeBytes: z.number(),
      tags: Tags,
      createTime: z.number(),
      attachment: z
        .object({
          instanceId: z.string(),
          device: z.string(),
          state: z.enum(["attaching", "attached", "detaching", "detached"]),
          attachTime: z.number(),
          deleteOnTermination: z.boolean().optional(),
        })
        .optional(),
    }),
  ),
  lifecycleActions: z.array(
    z.object({
      token: z.string(),
      hookName: z.string(),
      autoScalingGroupName: z.string(),
      instanceId: z.string(),
      transition: z.enum(["autoscaling:EC2_INSTANCE_LAUNCHING", "autoscaling:EC2_INSTANCE_TERMINATING"]),
      deadline: z.number(),
    }),
  ),
});
export type LocalEc2Snapshot = z.infer<typeof LocalEc2Snapshot>;
