/**
 * The launch flow's shapes: what the user asks for, the plan, and the narrow interface each target implements
 * (aws: EC2 through ./aws.ts; local: containers with their own engine through ./local.ts).
 */
import type { Catalog } from "../catalog/catalog.js";
import type { Config } from "../config/load.js";
import type { Arch, Role, Target } from "../config/schema.js";
import type { EventSink } from "../events.js";
import type { BootSteps } from "./boot-steps.js";
import type { CpuTopology, WorkerCpuState } from "./cpus.js";
import type { HealthProbe } from "./health.js";
import type { ImageProbe } from "./image-check.js";
import type { Market } from "./ids.js";
import type { UserData } from "../render/user-data.js";

/** What the launch flow takes: the target (backend), the catalog and the health probe, and where events go. */
export interface LaunchDeps {
  config: Config;
  backend: LaunchBackend;
  /** The catalog, opened only once the checks that need no API call have passed. */
  catalog: () => Promise<Catalog>;
  /** Where release records live (aws: the home region's catalog); default: {@link LaunchDeps.catalog}. */
  releaseCatalog?: () => Promise<Catalog>;
  events: EventSink;
  probe: HealthProbe;
  /** Asks the registry whether an image exists (./image-check.ts); absent: images to pull are not checked. */
  imageProbe?: ImageProbe;
  /** @default 2000 */
  healthIntervalMs?: number;
  sleep?: (ms: number) => Promise<void>;
  now?: () => number;
  /**
   * The run's interrupt (src/cli/context.ts): no new instance starts, waits stop, and what this launch started
   * is terminated (unless `keepOnFailure`); the launch rejects with an InterruptedError that says so.
   */
  signal?: AbortSignal;
}

export interface LaunchOptions {
  target: Target;
  runId: string;
  /** Task-runner instances per instance type (0: the orchestrator only). */
  taskRunners: number;
  /** Task-runner instance types (default: roles.task-runner.instance_types). */
  instanceTypes: string[];
  /** Task runners as spot instances, falling back to on-demand on capacity errors (aws). */
  spot: boolean;
  /** Worker containers per task-runner instance. */
  workersPerInstance: "auto" | number;
  /** Workers per instance of some types (`workers_per_instance: calibrated`), instead of `workersPerInstance`. */
  workersByType?: Record<string, number>;
  /** Keep a running orchestrator of the same pipeline and launch only task runners. */
  reuseOrchestrator: boolean;
  /** Leave what this launch started running when something fails. */
  keepOnFailure: boolean;
  /** Wait for the orchestrator's health (and, locally, every instance's readiness). */
  wait: boolean;
  dryRun: boolean;
  /** Catalog label to resolve. @default "latest" */
  label: string;
}

/** What the user-data needs to know about the target. */
export interface BootContext {
  region: string;
  registry: { user: string; auth: "ecr" | "file"; passwordFile: string };
  secret: { source: "ssm" | "file"; parameter: string };
  /** The port the orchestrator listens on (local: a free one when the configured port is taken). */
  orchestratorPort: number;
  /** Address task runners reach a new orchestrator at, when known before it starts (local: 127.0.0.1). */
  orchestratorHost?: string;
}

/** One request: `count` instances of one role and type. */
export interface GroupRequest {
  role: Role;
  instanceType: string;
  arch: Arch;
  count: number;
  market: Market;
  /** AMI id (aws) or twin image id (local). */
  imageId: string;
  /** local: the pre-load volume each instance gets its own copy of (null: none was baked). */
  preloadVolume: string | null;
  userData: UserData;
  tags: Record<string, string>;
  /** local: the CPUs of each instance. */
  instanceCpus?: number[][];
  /** local: the number of the group's first instance among the role's instances of the run (0-based). */
  firstIndex?: number;
  /** local: the orchestrator's port, recorded on the instance so a later launch can reuse it. */
  port?: number;
}

export interface StartedInstance {
  id: string;
  role: Role;
  instanceType: string;
  arch: Arch;
  market: Market;
  privateIp: string;
  state: string;
}

/** What an instance reported when it became ready (local: its /run/imgtool/ready). */
export interface ReadyReport {
  /** Each worker with its pinned CPU and that CPU's state at boot. */
  workers: { name: string; cpus: string; cpu?: WorkerCpuState }[];
  /** From the first line of user-data to all workers running, as the instance measured it. */
  bootToReadySeconds: number;
  /** Each boot step's seconds, in boot order (./boot-steps.ts); absent from a user-data that does not time them. */
  bootSteps?: BootSteps;
  /** From the instance's start (the engine's record) to its readiness marker. */
  startToReadySeconds?: number;
  /** aws: from the RunInstances answer to the launcher seeing the ready record (at most one poll late). */
  launchToReadySeconds?: number;
  /** A stack role: from `compose up` to every waited-for service ready, as the instance measured it. */
  stackReadySeconds?: number;
  /** A stack role: the services it waited for. */
  stack?: string[];
  /** A task runner: its boot's read of what the workers touch (image layers, ruby-bench, Rubies), before them. */
  prewarmSeconds?: number;
  pulled: boolean;
  registryLogin: boolean;
}

export interface FoundInstance {
  id: string;
  role: string;
  runId: string;
  privateIp: string;
  state: string;
  /** The orchestrator's port, when the target records it. */
  port?: number;
}

export interface LaunchBackend {
  readonly target: Target;
  /** Target facts for the user-data of this run; makes no change and (aws) no API call. */
  bootContext(runId: string): Promise<BootContext>;
  /** Make what the instances read at boot exist (local: the secret file). Not called on a dry run. */
  prepare(): Promise<void>;
  /**
   * Start one group with one request; resolves once the request is answered (not when ready). On aws a spot
   * request that meets a capacity error falls back to on-demand.
   */
  start(req: GroupRequest, runId: string): Promise<StartedInstance[]>;
  /** Terminate instances by id; resolves with the ids terminated. */
  terminate(ids: string[]): Promise<string[]>;
  /** Instances of this pipeline that are not terminated, by role and/or run id. */
  find(filter: { role?: Role; runId?: string; running?: boolean }): Promise<FoundInstance[]>;
  /**
   * Wait for the instance's readiness: local, its marker; aws, the record it publishes in SSM (absent when the
   * backend was given no record store). Rejects once `signal` is aborted.
   */
  waitReady?(instance: StartedInstance, timeoutMs: number, signal?: AbortSignal): Promise<ReadyReport>;
  /** Remove what a run left besides its instances (aws: its readiness records). Idempotent. */
  forgetRun?(runId: string): Promise<void>;
  /** local: this machine's CPUs, to size the instances. */
  machineCpus?(): CpuTopology;
  /** aws: check the AMIs before launching (exist, available, architecture) and learn their root devices. */
  checkImages?(imageIds: string[]): Promise<Map<string, { rootDeviceName: string }>>;
}

/** A group as planned: the request's instances, image and user-data, and what the plan shows of them. */
export interface PlannedGroup extends Pick<
  GroupRequest,
  | "role"
  | "instanceType"
  | "arch"
  | "count"
  | "market"
  | "imageId"
  | "preloadVolume"
  | "userData"
  | "instanceCpus"
> {
  amiVersion: string;
  image: string;
  imageVersion: string;
  bakedImage: string | null;
  workers: "auto" | number;
  /** The role is a Compose stack: it starts the project, no pinned workers (`workers` and `workerCpus` do not apply). */
  stack?: true;
  /** local: the CPUs of each worker of each instance, as the user-data will pick them (not for a stack). */
  workerCpus?: number[][];
}

export interface LaunchPlan {
  runId: string;
  target: Target;
  pipeline: string;
  label: string;
  region: string;
  orchestrator:
    | { reuse: true; instance: FoundInstance; url: string }
    | { reuse: false; group: PlannedGroup; url: string | undefined };
  taskRunners: PlannedGroup[];
  warnings: string[];
}

export interface InstanceReport {
  role: Role;
  id: string;
  instanceType: string;
  arch: Arch | null;
  market: Market | null;
  privateIp: string;
  state: string;
  /** Workers as the instance reported them (local), or as planned (aws: pinned at boot). */
  workers: { name: string; cpus: string | null; cpu?: WorkerCpuState }[];
  bootToReadySeconds: number | null;
  /** Each boot step's seconds, in boot order (engine-wait, secret-read, image-check, worker-start or stack-start). */
  bootSteps: BootSteps | null;
  startToReadySeconds: number | null;
  /** aws: from the RunInstances answer to the ready record; null where the target does not measure it. */
  launchToReadySeconds: number | null;
  /** A stack role's services: from `compose up` to ready (null: no stack). */
  stackReadySeconds?: number | null;
  /** A stack role's services that the boot waited for. */
  stack?: string[];
  /** A task runner's pre-warm (image layers, ruby-bench, Rubies read before the workers start). */
  prewarmSeconds?: number;
  pulled: boolean | null;
  reused: boolean;
}

export interface LaunchResult {
  runId: string;
  target: Target;
  dryRun: boolean;
  label: string;
  orchestrator: {
    id: string | null;
    url: string | null;
    reused: boolean;
    healthy: boolean | null;
    checks: number;
  };
  instances: InstanceReport[];
  /** Dry run: the plan and the rendered user-data per group. */
  plan?: LaunchPlan;
  seconds: number;
}
