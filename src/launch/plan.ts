/**
 * The launch plan: resolve every id the launch needs from the catalog in one batched call (GetParameters takes
 * 10 names: all batches at once), then decide, without side effects, which instances of which type start from
 * which AMI (per architecture) and image, with how many workers on which CPUs, spot or on-demand, and render
 * each group's user-data.
 */
import { checkValue, parseMeta, type Catalog } from "../catalog/catalog.js";
import type { StoredParameter } from "../catalog/store.js";
import { Releases, bakedImageOf, imageIn, isReleaseSelector, type Release } from "../catalog/release.js";
import type { Config } from "../config/load.js";
import { ROLES, type Arch, type Role } from "../config/schema.js";
import { UsageError } from "../errors.js";
import { fixedWorkers } from "../config/calibration.js";
import { instanceArch, targetArch } from "../config/arch.js";
import { runRecordsPath } from "../config/tags.js";
import { formatCpuList, orderCpus, workerCpus, type CpuTopology } from "./cpus.js";
import type { Market } from "./ids.js";
import type { BootContext, FoundInstance, LaunchOptions, LaunchPlan, PlannedGroup } from "./types.js";
import { localSecretMount } from "./secret-files.js";
import { renderTfvars, type TfvarsInput } from "../render/tfvars.js";
import { registryHost, renderUserData, type UserDataValues } from "../render/user-data.js";

const INSTANCE_TYPE_RE = /^[a-z][a-z0-9-]*\.[a-z0-9]+$/;

export interface ResolvedAmi {
  id: string;
  version: string;
  /** The image pre-loaded at bake time. */
  bakedImage: string | null;
  preloadVolume: string | null;
}

export interface Resolved {
  amis: Map<string, ResolvedAmi>;
  images: Map<Role, { ref: string; version: string }>;
  /** Names resolved besides the catalog's (the secret's SSM name): present or not. */
  extra: Map<string, boolean>;
  /** Parameter names asked for, in order (for --verbose and tests). */
  names: string[];
  /** Where the ids came from: a release record, or (a catalog from before releases) each artefact's label. */
  source?: "release" | "labels";
  /** The release id, when they came from a release. */
  release?: string;
}

const isChannelLabel = (label: string) => label === "latest" || label === "stable";

export const amiKey = (role: Role, arch: Arch) => `${role}/${arch}`;

/** The architectures of the task-runner types, and the orchestrator's. */
export function neededArches(orchestratorType: string | undefined, runnerTypes: string[]) {
  return {
    orchestrator: orchestratorType ? instanceArch(orchestratorType) : undefined,
    taskRunner: [...new Set(runnerTypes.map(instanceArch))],
  };
}

/**
 * One batched catalog call for everything: the release record a channel (or release id) selects, which holds
 * every AMI and image id of every region, and `extraNames` (e.g. the secret's name, read without decryption
 * only to know it exists). `releaseCatalog`: where releases live (aws: the home region's catalog; default
 * `catalog`); when it is another region's, its read goes alongside, at the same time. Only a version label,
 * or a channel on a catalog from before releases (no release carries it), reads each role's AMIs (with
 * metadata) per architecture and image by that label instead, in a second batched call.
 */
export async function resolveForLaunch(
  catalog: Catalog,
  want: { amis: { role: Role; arch: Arch }[]; images: Role[]; extraNames?: string[] },
  label: string,
  opts: { releaseCatalog?: Catalog } = {},
): Promise<Resolved> {
  const amiKeys = want.amis.map((a) => ({ role: a.role, kind: "ami" as const, arch: a.arch }));
  const imageKeys = want.images.map((role) => ({ role, kind: "image" as const }));
  const releases = isReleaseSelector(label) ? new Releases(opts.releaseCatalog ?? catalog) : undefined;
  const apart =
    releases !== undefined && opts.releaseCatalog !== undefined && opts.releaseCatalog !== catalog;
  const extraNames = want.extraNames ?? [];
  if (releases) {
    // The usual path: one read of the release record, with the extra names beside it.
    const first = [...(apart ? [] : [releases.selector(label)]), ...extraNames];
    const [{ found }, apartFound] = await Promise.all([
      first.length ? catalog.resolveNames(first) : { found: [] as StoredParameter[], missing: [] },
      apart ? releases.home.store.getMany([releases.selector(label)]) : undefined,
    ]);
    const release = releases.fromFound(apartFound?.found ?? found);
    const names = [...(apart ? [releases.selector(label)] : []), ...first];
    const extra = new Map(extraNames.map((n) => [n, found.some((p) => p.name === n)] as const));
    if (release) {
      return {
        ...fromRelease(
          release,
          catalog.region ?? "local",
          want.amis,
          want.images.map((role) => ({ role })),
          label,
        ),
        extra,
        names,
      };
    }
    if (!isChannelLabel(label)) {
      throw new UsageError(`There is no release ${label} at ${releases.name}. Nothing was launched.`, {
        fix: "`imgtool status` lists the releases; --channel stable or latest launches what a channel points at.",
      });
    }
  }
  // A version label, or a catalog from before releases: each artefact's own label.
  const names = [
    ...[...amiKeys, ...imageKeys].flatMap((k) => [
      `${catalog.name(k)}:${label}`,
      `${catalog.metaName(k)}:${label}`,
    ]),
    ...extraNames,
  ];
  const { found } = await catalog.resolveNames(names);
  const extra = new Map(extraNames.map((n) => [n, found.some((p) => p.name === n)] as const));
  const allNames = names;
  const byName = new Map(found.map((p) => [p.name, p]));
  const meta = (name: string): Record<string, unknown> => {
    const p = byName.get(name);
    return p ? parseMeta(p.name, p.version, p.value) : {};
  };
  const str = (v: unknown) => (typeof v === "string" && v !== "" ? v : null);
  const missing: string[] = [];
  const amis = new Map<string, ResolvedAmi>();
  for (const k of amiKeys) {
    const p = byName.get(catalog.name(k));
    if (!p) {
      missing.push(catalog.name(k));
      continue;
    }
    checkValue(k, p.name, p.value);
    const m = meta(catalog.metaName(k));
    amis.set(amiKey(k.role as Role, k.arch), {
      id: p.value,
      version: str(m.version) ?? "unknown",
      bakedImage: str(m.image),
      preloadVolume: str(m.preloadVolume),
    });
  }
  const images = new Map<Role, { ref: string; version: string }>();
  for (const k of imageKeys) {
    const p = byName.get(catalog.name(k));
    if (!p) {
      missing.push(catalog.name(k));
      continue;
    }
    checkValue(k, p.name, p.value);
    images.set(k.role as Role, {
      ref: p.value,
      version: str(meta(catalog.metaName(k)).version) ?? "unknown",
    });
  }
  if (missing.length) {
    throw new UsageError(
      `The catalog (label ${label}) has nothing at:\n${missing.map((m) => `  - ${m}`).join("\n")}\nNothing was launched.`,
      {
        fix:
          "Bake and push first: `imgtool push image` publishes the images, `imgtool bake ami` the AMIs (one per " +
          "architecture of roles.<role>.instance_types; --instance-types of another architecture needs it listed there).",
      },
    );
  }
  return { amis, images, extra, names: allNames, source: "labels" };
}

/** The AMIs and images of a launch in `region`, from one release record. */
function fromRelease(
  release: Release,
  region: string,
  amiKeys: { role: Role; arch: Arch }[],
  imageKeys: { role: Role }[],
  label: string,
): Omit<Resolved, "extra" | "names"> {
  const missing: string[] = [];
  const amis = new Map<string, ResolvedAmi>();
  for (const k of amiKeys) {
    const a = release.roles[k.role]?.ami?.[k.arch];
    const id = a?.ids[region];
    if (!a || !id) {
      missing.push(`${k.role} ${k.arch} AMI in ${region}`);
      continue;
    }
    amis.set(amiKey(k.role, k.arch), {
      id,
      version: a.version,
      bakedImage: bakedImageOf(release, k.role, a),
      preloadVolume: a.preloadVolume,
    });
  }
  const images = new Map<Role, { ref: string; version: string }>();
  for (const k of imageKeys) {
    const i = release.roles[k.role]?.image;
    if (!i) {
      missing.push(`${k.role} image`);
      continue;
    }
    images.set(k.role, { ref: imageIn(release, i, region), version: i.version });
  }
  if (missing.length) {
    throw new UsageError(
      `Release ${release.id} (${label}) has no:\n${missing.map((m) => `  - ${m}`).join("\n")}\nNothing was launched.`,
      {
        fix:
          "A release holds what was published when it was recorded: push and bake what is missing (`imgtool pipeline` " +
          "does both and records a new release), or pick another release with --channel.",
      },
    );
  }
  return { amis, images, release: release.id, source: "release" };
}

/**
 * What `imgtool launch --emit tfvars` writes (rendered by src/render/tfvars.ts): each role's AMIs for the
 * architectures of its instance types, and its image, in one batched catalog call.
 */
export async function resolveTfvars(
  config: Config,
  catalog: Catalog,
  opts: { label: string; region: string; taskRunnerTypes: string[]; local: boolean; apiKeyParameter: string },
): Promise<TfvarsInput> {
  const instanceTypes: Record<Role, string[]> = {
    "task-runner": opts.taskRunnerTypes,
    orchestrator: [config.roles.orchestrator.instance_types[0]!],
  };
  const amis = ROLES.flatMap((role) =>
    [...new Set(instanceTypes[role].map((t) => targetArch(opts.local ? "local" : "aws", t)))].map((arch) => ({
      role,
      arch,
    })),
  );
  const resolved = await resolveForLaunch(catalog, { amis, images: [...ROLES] }, opts.label);
  const tfAmis: TfvarsInput["amis"] = {};
  for (const { role, arch } of amis) {
    const a = resolved.amis.get(amiKey(role, arch))!;
    (tfAmis[role] ??= {})[arch] = { id: a.id, version: a.version };
  }
  return {
    pipeline: config.pipeline,
    label: opts.label,
    region: opts.region,
    instanceTypes,
    amis: tfAmis,
    images: Object.fromEntries(resolved.images),
    apiKeyParameter: opts.apiKeyParameter,
  };
}

/** `imgtool launch --emit tfvars`: the launch's ids (its label, task-runner types, target) as tfvars text. */
export async function launchTfvars(
  config: Config,
  catalog: Catalog,
  opts: LaunchOptions,
  region: string,
): Promise<string> {
  return renderTfvars(
    await resolveTfvars(config, catalog, {
      label: opts.label,
      region,
      taskRunnerTypes: opts.instanceTypes,
      local: opts.target === "local",
      apiKeyParameter:
        config.aws.api_key_parameter ?? `${config.aws.ssm_prefix}/secrets/orchestrator-api-key`,
    }),
  );
}

/** Validate the flags that shape the plan. */
export function checkOptions(opts: LaunchOptions): void {
  if (!Number.isInteger(opts.taskRunners) || opts.taskRunners < 0 || opts.taskRunners > 500) {
    throw new UsageError(`--task-runners ${opts.taskRunners}: give a whole number from 0 to 500.`);
  }
  if (opts.instanceTypes.length === 0) throw new UsageError("--instance-types: give at least one type.");
  for (const t of opts.instanceTypes) {
    if (!INSTANCE_TYPE_RE.test(t)) {
      throw new UsageError(`--instance-types: ${JSON.stringify(t)} is not an EC2 instance type.`, {
        fix: "e.g. --instance-types c7i.large,c7g.large",
      });
    }
  }
  const dup = opts.instanceTypes.find((t, i) => opts.instanceTypes.indexOf(t) !== i);
  if (dup) throw new UsageError(`--instance-types: ${dup} is listed twice.`);
  const w = opts.workersPerInstance;
  if (w !== "auto" && (!Number.isInteger(w) || w < 1 || w > 192)) {
    throw new UsageError(`--workers-per-instance ${String(w)}: use auto or a whole number from 1 to 192.`);
  }
}

/** The values of one role's user-data, before the catalog is read (placeholders where it is not). */
export function userDataValues(
  config: Config,
  opts: LaunchOptions,
  ctx: BootContext,
  role: Role,
  v: {
    version: string;
    image: string;
    bakedImage: string | null;
    workers: "auto" | number;
    orchestratorUrl?: string;
    instanceType?: string;
  },
): UserDataValues {
  return {
    role,
    target: opts.target,
    pipeline: config.pipeline,
    runId: opts.runId,
    version: v.version,
    image: v.image,
    bakedImage: v.bakedImage ?? "none",
    registry: { host: registryHost(v.image), ...ctx.registry },
    secret: ctx.secret,
    region: ctx.region,
    workers: v.workers,
    restartPolicy: config.launch.restart_policy,
    engineWaitSeconds: config.launch.engine_wait_seconds,
    recordPrefix: opts.target === "aws" ? runRecordsPath(config.aws.ssm_prefix, opts.runId) : "",
    ...(role === "task-runner"
      ? {
          orchestratorUrl: v.orchestratorUrl ?? `http://255.255.255.255:${ctx.orchestratorPort}`,
          prewarmLimitSeconds: config.boot_budget.pre_warm.seconds,
        }
      : { port: ctx.orchestratorPort }),
    workerEnv: config.launch.worker_env[role],
    workload: {
      run: config.roles[role].run,
      instanceType: v.instanceType ?? config.roles[role].instance_types[0]!,
      orchestratorPort: ctx.orchestratorPort,
      healthWaitSeconds: instanceWaitSeconds(
        config.launch.ready_timeout_seconds,
        config.launch.engine_wait_seconds,
      ),
      secretLocation: (name) => secretLocation(config, ctx, name),
    },
  };
}

/**
 * How long an instance's user-data waits for its workers or stack to be ready: shorter than launch's own wait
 * (launch.ready_timeout_seconds, counted from the start request, before the boot's first line and the engine
 * wait), by 120 s plus the engine wait, at most a quarter of it. So a service that never gets ready fails on the
 * instance first (unless the boot itself took longer than that margin), and launch shows the instance's reason
 * (the service, its exit code, its last log lines) instead of "no readiness record".
 */
export function instanceWaitSeconds(readyTimeoutSeconds: number, engineWaitSeconds: number): number {
  return readyTimeoutSeconds - Math.min(120 + engineWaitSeconds, Math.floor(readyTimeoutSeconds / 4));
}

/**
 * How long launch waits for an instance of `role` to be ready (or to publish why not): launch.ready_timeout_seconds,
 * and for a task runner also its pre-warm's limit (boot_budget.pre_warm.seconds), which comes before its workers
 * start and, on aws, reads a fresh AMI's volume as it loads from S3: minutes, on the smoke launch after a bake.
 */
export function readyTimeoutSeconds(config: Config, role: Role): number {
  return (
    config.launch.ready_timeout_seconds + (role === "task-runner" ? config.boot_budget.pre_warm.seconds : 0)
  );
}

/** Where an instance reads a declared secret at boot: its SSM name (aws) or its file in the local instance. */
export function secretLocation(config: Config, ctx: BootContext, name: string): string {
  return ctx.secret.source === "ssm" ? config.secrets[name]!.aws_parameter : localSecretMount(name);
}

export const orchestratorUrl = (host: string, port: number) => `http://${host}:${port}`;

/** Shown in a dry run for task runners whose orchestrator's address comes with its RunInstances answer. */
export const PENDING_ORCHESTRATOR_URL = "http://<orchestrator-private-address>";

/**
 * Split this machine's CPUs between the local instances, physical cores first: each task-runner instance gets
 * as many CPUs as it has workers (auto: an equal share), then the orchestrator as many as its workers (auto: one);
 * a Compose stack, which pins no workers, gets every CPU whose core no task runner uses (its instance has all of
 * its vCPUs on aws; an SMT sibling of a worker's CPU would disturb that worker). When there are not enough,
 * instances share CPUs, and the plan says so.
 */
export function allocateLocalCpus(
  machine: CpuTopology,
  runners: { count: number; workers: "auto" | number },
  orchestrator: { workers: "auto" | number; stack?: boolean } | undefined,
): { runner: number[][]; orchestrator: number[] | undefined; warnings: string[] } {
  const { ordered } = orderCpus(machine);
  const warnings: string[] = [];
  const m = ordered.length;
  let cursor = 0;
  let shared = false;
  const take = (k: number): number[] => {
    const out: number[] = [];
    for (let i = 0; i < k; i++) {
      if (cursor >= m) {
        shared = true;
        cursor = 0;
      }
      out.push(ordered[cursor++]!);
    }
    return [...new Set(out)].sort((a, b) => a - b);
  };
  const per =
    runners.workers === "auto" ? Math.max(1, Math.floor(m / Math.max(1, runners.count))) : runners.workers;
  const runner = Array.from({ length: runners.count }, () => take(per));
  if (runners.workers !== "auto" && runners.workers > m) {
    warnings.push(
      `${runners.workers} workers per task runner, but this machine has ${m} CPU(s): the user-data will refuse to share a CPU between workers`,
    );
  }
  if (shared) {
    warnings.push(
      `this machine has ${m} CPU(s) (${formatCpuList(ordered)}): task-runner instances share CPUs, so their numbers are not comparable`,
    );
  }
  let orch: number[] | undefined;
  if (orchestrator) {
    // The CPUs no task runner has, nor an SMT sibling of one of theirs (none once they share CPUs).
    const used = new Set(runner.flat().flatMap((c) => machine.siblings.get(c) ?? [c]));
    const free = shared ? [] : ordered.slice(cursor).filter((c) => !used.has(c));
    const k = orchestrator.stack || orchestrator.workers === "auto" ? 1 : orchestrator.workers;
    if (orchestrator.stack && free.length > 0) orch = [...free].sort((a, b) => a - b);
    else if (!orchestrator.stack && !shared && cursor + k <= m) orch = take(k);
    else {
      orch = ordered.slice(Math.max(0, m - k));
      if (runners.count > 0)
        warnings.push(
          `this machine has ${m} CPU(s): the orchestrator shares CPU ${formatCpuList(orch)} (or its core) with a task-runner worker`,
        );
    }
  }
  return { runner, orchestrator: orch, warnings };
}

/** Decide the plan from the options and what the catalog resolved. Pure. */
export function buildPlan(input: {
  config: Config;
  opts: LaunchOptions;
  ctx: BootContext;
  resolved: Resolved;
  reuse: FoundInstance | undefined;
  machine?: CpuTopology;
}): LaunchPlan {
  const { config, opts, ctx, resolved } = input;
  const warnings: string[] = [];
  const orchType = config.roles.orchestrator.instance_types[0]!;
  const orchWorkers = fixedWorkers(config.roles.orchestrator.workers_per_instance);
  const local = opts.target === "local";

  let cpus: ReturnType<typeof allocateLocalCpus> | undefined;
  if (local) {
    if (!input.machine) throw new Error("the local plan needs this machine's CPUs");
    cpus = allocateLocalCpus(
      input.machine,
      { count: opts.taskRunners * opts.instanceTypes.length, workers: opts.workersPerInstance },
      input.reuse
        ? undefined
        : { workers: orchWorkers, stack: config.roles.orchestrator.stack !== undefined },
    );
    warnings.push(...cpus.warnings);
  }
  const predictWorkers = (instance: number[], workers: "auto" | number): number[] =>
    workerCpus(orderCpus({ allowed: instance, siblings: input.machine!.siblings }), workers) ?? [];

  const group = (
    role: Role,
    instanceType: string,
    count: number,
    market: Market,
    workers: "auto" | number,
    instanceCpus: number[][] | undefined,
    url: string | undefined,
  ): PlannedGroup => {
    const arch = targetArch(opts.target, instanceType);
    const stack = config.roles[role].stack !== undefined;
    const ami = resolved.amis.get(amiKey(role, arch))!;
    const image = resolved.images.get(role)!;
    const values = userDataValues(config, opts, ctx, role, {
      version: image.version,
      image: image.ref,
      bakedImage: ami.bakedImage,
      workers,
      instanceType,
      ...(url ? { orchestratorUrl: url } : {}),
    });
    return {
      role,
      instanceType,
      arch,
      count,
      market,
      imageId: ami.id,
      amiVersion: ami.version,
      image: image.ref,
      imageVersion: image.version,
      bakedImage: ami.bakedImage,
      preloadVolume: ami.preloadVolume,
      workers,
      ...(stack ? { stack: true as const } : {}),
      ...(instanceCpus ? { instanceCpus } : {}),
      ...(instanceCpus && !stack ? { workerCpus: instanceCpus.map((c) => predictWorkers(c, workers)) } : {}),
      userData: renderUserData(values, config.launch.user_data_compression),
    };
  };

  let orchestrator: LaunchPlan["orchestrator"];
  if (input.reuse) {
    const url = orchestratorUrl(input.reuse.privateIp, input.reuse.port ?? ctx.orchestratorPort);
    orchestrator = { reuse: true, instance: input.reuse, url };
  } else {
    const url = ctx.orchestratorHost
      ? orchestratorUrl(ctx.orchestratorHost, ctx.orchestratorPort)
      : undefined;
    orchestrator = {
      reuse: false,
      group: group(
        "orchestrator",
        orchType,
        1,
        "on-demand",
        orchWorkers,
        cpus?.orchestrator ? [cpus.orchestrator] : undefined,
        undefined,
      ),
      url,
    };
  }
  const url = orchestrator.url;
  let next = 0;
  const taskRunners =
    opts.taskRunners === 0
      ? []
      : opts.instanceTypes.map((t) => {
          const instanceCpus = cpus ? cpus.runner.slice(next, next + opts.taskRunners) : undefined;
          next += opts.taskRunners;
          return group(
            "task-runner",
            t,
            opts.taskRunners,
            opts.spot && !local ? "spot" : "on-demand",
            opts.workersByType?.[t] ?? opts.workersPerInstance,
            instanceCpus,
            url ?? PENDING_ORCHESTRATOR_URL,
          );
        });
  if (opts.spot && local) warnings.push("--spot applies to the aws target; local instances are containers");
  return {
    runId: opts.runId,
    target: opts.target,
    pipeline: config.pipeline,
    label: opts.label,
    region: ctx.region,
    orchestrator,
    taskRunners,
    warnings,
  };
}

/** The groups the plan starts: the orchestrator's (unless a running one is kept), then the task runners'. */
export function groupsOf(plan: LaunchPlan): PlannedGroup[] {
  return [...(plan.orchestrator.reuse ? [] : [plan.orchestrator.group]), ...plan.taskRunners];
}
