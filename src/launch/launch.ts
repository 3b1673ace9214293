/**
 * `imgtool launch`: start an orchestrator and task runners from the catalog's AMIs (or twins) and images.
 *
 * 1. Check before work: every role's user-data is checked against EC2's 16 KB limit (at its largest) before any
 *    API call; every id is resolved in one batched catalog call; nothing missing, nothing too big.
 * 2. The orchestrator starts first (or a running one is kept, `reuseOrchestrator`); the task runners start as soon
 *    as its RunInstances answers with its private address (they retry it until it answers), one request per
 *    instance type, all types at once, while the orchestrator's health is polled every 2 s (checked once when it
 *    is already healthy).
 * 3. If anything fails, what this launch started is terminated (unless `keepOnFailure`): nothing is orphaned.
 *
 * The flow never prints: it emits events, and takes the target (backend), catalog and health probe as
 * dependencies.
 */
import { secretsUsed } from "../config/workload.js";
import type { Catalog } from "../catalog/catalog.js";
import type { Config } from "../config/load.js";
import type { Arch, Role } from "../config/schema.js";
import { archOf } from "../bake/arch.js";
import { FailureError, UsageError, errorName, isImgtoolError } from "../errors.js";
import type { EventSink } from "../events.js";
import { launchTags } from "./aws.js";
import { formatCpuList } from "./cpus.js";
import { healthCheckOf, waitHealthy, type HealthProbe } from "./health.js";
import { checkRunId } from "./ids.js";
import {
  buildPlan,
  checkOptions,
  orchestratorUrl,
  resolveForLaunch,
  userDataValues,
  type Resolved,
} from "./plan.js";
import type {
  FoundInstance,
  InstanceReport,
  LaunchBackend,
  LaunchOptions,
  LaunchPlan,
  LaunchResult,
  PlannedGroup,
  ReadyReport,
  StartedInstance,
} from "./types.js";
import { checkUserDataSize, renderUserData, worstCaseSize } from "./user-data.js";

export interface LaunchDeps {
  config: Config;
  backend: LaunchBackend;
  /** The catalog, opened only once the checks that need no API call have passed. */
  catalog: () => Promise<Catalog>;
  events: EventSink;
  probe: HealthProbe;
  /** @default 2000 */
  healthIntervalMs?: number;
  sleep?: (ms: number) => Promise<void>;
  now?: () => number;
}

type Settled<T> = { ok: true; value: T } | { ok: false; error: unknown };
const settle = <T>(p: Promise<T>): Promise<Settled<T>> =>
  p.then(
    (value) => ({ ok: true as const, value }),
    (error: unknown) => ({ ok: false as const, error }),
  );

const PLACEHOLDER_IMAGE = "registry.invalid/placeholder@sha256:" + "0".repeat(64);

/** Resolve, plan and (unless a dry run) launch. */
export async function launch(opts: LaunchOptions, deps: LaunchDeps): Promise<LaunchResult> {
  const { config, backend, events } = deps;
  const now = deps.now ?? Date.now;
  const t0 = now();
  checkRunId(opts.runId);
  checkOptions(opts);
  const compression = config.launch.user_data_compression;
  const ctx = await backend.bootContext();

  // 1. The 16 KB limit, before any API call: each role's user-data with the longest values the catalog can hold
  //    (the orchestrator's too with --reuse-orchestrator: none may be running).
  const roles: Role[] = ["orchestrator", ...(opts.taskRunners > 0 ? (["task-runner"] as const) : [])];
  for (const role of roles) {
    const values = userDataValues(config, opts, ctx, role, {
      version: "v0",
      image: PLACEHOLDER_IMAGE,
      bakedImage: null,
      workers:
        role === "task-runner" ? opts.workersPerInstance : config.roles.orchestrator.workers_per_instance,
    });
    checkUserDataSize(role, worstCaseSize(values, compression), { compression, bound: true });
  }
  if (!opts.dryRun) await backend.prepare();
  events({
    type: "start",
    message:
      `${opts.dryRun ? "planning" : "launching"} run ${opts.runId} on ${opts.target}: ` +
      `${opts.reuseOrchestrator ? "a running orchestrator (if any)" : "an orchestrator"}` +
      (opts.taskRunners
        ? ` and ${opts.taskRunners} task runner(s) per type (${opts.instanceTypes.join(", ")})`
        : ""),
    data: { runId: opts.runId, target: opts.target },
  });

  // 2. A running orchestrator to keep.
  let reuse: FoundInstance | undefined;
  if (opts.reuseOrchestrator) {
    const running = (await backend.find({ role: "orchestrator", running: true })).filter(
      (i) => i.state === "running",
    );
    reuse = running[0];
    if (reuse) {
      events({
        type: "found",
        role: "orchestrator",
        message: `keeping the running orchestrator ${reuse.id} (run ${reuse.runId}) at ${reuse.privateIp}`,
      });
    } else {
      events({
        type: "warn",
        role: "orchestrator",
        message: `no running orchestrator of pipeline ${config.pipeline}: launching one`,
      });
    }
  }

  // 3. Every id in one batched catalog call.
  // The secrets the launched roles use: each must exist (read without decryption, only to know it does).
  const usedSecrets =
    ctx.secret.source === "ssm"
      ? [
          ...new Set([
            ...(reuse ? [] : secretsUsed(config.roles.orchestrator.run)),
            ...(opts.taskRunners > 0 ? secretsUsed(config.roles["task-runner"].run) : []),
          ]),
        ].map((name) => ({ name, parameter: config.secrets[name]!.aws_parameter }))
      : [];
  const resolved = await resolveAll(
    opts,
    deps,
    usedSecrets.map((s) => s.parameter),
    !!reuse,
  );
  const missingSecrets = usedSecrets.filter((s) => !resolved.extra.get(s.parameter));
  if (missingSecrets.length) {
    throw new UsageError(
      `${missingSecrets
        .map((s) => `The secret ${s.name}: ${s.parameter} does not exist in SSM (${ctx.region}).`)
        .join("\n")}\nNothing was launched.`,
      {
        fix:
          `Create each once as a SecureString (the instances read it at boot; imgtool never reads it): ` +
          missingSecrets
            .map(
              (s) =>
                `aws ssm put-parameter --type SecureString --name ${s.parameter} --value "$(openssl rand -hex 24)"`,
            )
            .join("; "),
      },
    );
  }

  // 4. The plan; the exact user-data is checked against the limit too.
  const plan = buildPlan({
    config,
    opts,
    ctx,
    resolved,
    reuse,
    ...(backend.machineCpus ? { machine: backend.machineCpus() } : {}),
  });
  for (const w of plan.warnings) events({ type: "warn", message: w });
  for (const g of groupsOf(plan)) checkUserDataSize(g.role, g.userData.bytes.length, { compression });
  if (opts.dryRun) {
    return {
      runId: opts.runId,
      target: opts.target,
      dryRun: true,
      label: opts.label,
      orchestrator: {
        id: plan.orchestrator.reuse ? plan.orchestrator.instance.id : null,
        url: plan.orchestrator.url ?? null,
        reused: plan.orchestrator.reuse,
        healthy: null,
        checks: 0,
      },
      instances: [],
      plan,
      seconds: (now() - t0) / 1000,
    };
  }
  if (backend.checkImages) await backend.checkImages([...new Set(groupsOf(plan).map((g) => g.imageId))]);

  // 5. Launch; on any failure, terminate what this launch started.
  const started: StartedInstance[] = [];
  const ready = new Map<string, ReadyReport>();
  const readyWaits: Promise<Settled<void>>[] = [];
  const timeoutMs = config.launch.ready_timeout_seconds * 1000;
  /** Aborts the health wait when an instance failed to boot: no waiting out the timeout for a lost cause. */
  const abort = new AbortController();
  let bootFailure: { error: unknown } | undefined;
  const watch = (insts: StartedInstance[]) => {
    if (!backend.waitReady || !opts.wait) return;
    for (const inst of insts) {
      readyWaits.push(
        settle(
          backend.waitReady(inst, timeoutMs).then((r) => {
            ready.set(inst.id, r);
            events({
              type: "ready",
              role: inst.role,
              message:
                `${inst.id} ready in ${r.bootToReadySeconds.toFixed(3)} s from its first line of user-data` +
                (r.startToReadySeconds !== undefined
                  ? ` (${r.startToReadySeconds.toFixed(3)} s from its start)`
                  : "") +
                `: ${r.workers.map((w) => `${w.name} on CPU ${w.cpus}`).join(", ")}` +
                (r.pulled ? "; pulled its image" : "; no pull (baked image)"),
              data: { id: inst.id, ...r },
            });
          }),
        ).then((r) => {
          if (!r.ok && !bootFailure) {
            bootFailure = { error: r.error };
            abort.abort();
          }
          return r;
        }),
      );
    }
  };
  const counters: Partial<Record<Role, number>> = {};
  const request = (g: PlannedGroup) => {
    const firstIndex = counters[g.role] ?? 0;
    counters[g.role] = firstIndex + g.count;
    return {
      role: g.role,
      instanceType: g.instanceType,
      arch: g.arch,
      count: g.count,
      market: g.market,
      imageId: g.imageId,
      preloadVolume: g.preloadVolume,
      userData: g.userData,
      tags: launchTags(config.pipeline, g.role, { ami: g.amiVersion, image: g.imageVersion }, opts.runId),
      firstIndex,
      ...(g.instanceCpus ? { instanceCpus: g.instanceCpus } : {}),
      ...(g.role === "orchestrator" ? { port: ctx.orchestratorPort } : {}),
    };
  };

  let health: { healthy: boolean; checks: number } = { healthy: false, checks: 0 };
  let check: ReturnType<typeof healthCheckOf>;
  let url: string;
  try {
    if (plan.orchestrator.reuse) {
      url = plan.orchestrator.url;
    } else {
      const insts = await backend.start(request(plan.orchestrator.group), opts.runId);
      started.push(...insts);
      const orch = insts[0]!;
      url = orchestratorUrl(orch.privateIp, ctx.orchestratorPort);
      events({
        type: "launch",
        role: "orchestrator",
        message: `started ${orch.id} at ${orch.privateIp}: task runners will find it at ${url}`,
        data: { id: orch.id, url },
      });
      watch(insts);
    }

    // The task runners, every type at once, with the orchestrator's address; its health meanwhile.
    check = healthCheckOf(config.roles.orchestrator.run.health.http, url);
    const healthWait =
      opts.wait && check
        ? settle(
            waitHealthy(check.url, {
              probe: (u) => deps.probe(u, check?.status),
              timeoutMs,
              ...(deps.healthIntervalMs !== undefined ? { intervalMs: deps.healthIntervalMs } : {}),
              ...(deps.sleep ? { sleep: deps.sleep } : {}),
              now,
              signal: abort.signal,
              onCheck: (n, ok) =>
                events({
                  type: "check",
                  role: "orchestrator",
                  message: `health check ${n} of ${check!.url}: ${ok ? "healthy" : "not yet"}`,
                }),
            }),
          )
        : undefined;
    const groups = await Promise.all(
      plan.taskRunners.map((g) => {
        const userData = renderUserData(
          userDataValues(config, opts, ctx, "task-runner", {
            version: g.imageVersion,
            image: g.image,
            bakedImage: g.bakedImage,
            workers: g.workers,
            orchestratorUrl: url,
            instanceType: g.instanceType,
          }),
          compression,
        );
        checkUserDataSize("task-runner", userData.bytes.length, { compression });
        return settle(
          backend.start({ ...request(g), userData }, opts.runId).then((insts) => {
            started.push(...insts);
            events({
              type: "launch",
              role: "task-runner",
              message: `started ${insts.length} x ${g.instanceType} (${insts[0]?.market ?? g.market}): ${insts.map((i) => i.id).join(", ")}`,
              data: { ids: insts.map((i) => i.id), instanceType: g.instanceType },
            });
            watch(insts);
            return insts;
          }),
        );
      }),
    );
    const failedGroups = groups.flatMap((r, i) =>
      r.ok ? [] : [{ group: plan.taskRunners[i]!, error: r.error }],
    );
    if (failedGroups.length) {
      abort.abort();
      const usage = failedGroups.find((f) => isImgtoolError(f.error) && f.error.exitCode === 2);
      if (usage) throw usage.error;
      throw new FailureError(
        failedGroups
          .map((f) => `Starting ${f.group.count} x ${f.group.instanceType} failed: ${describe(f.error)}`)
          .join("\n"),
        { cause: failedGroups[0]!.error },
      );
    }
    if (healthWait) {
      const h = await healthWait;
      if (bootFailure) throw bootFailure.error;
      if (!h.ok) throw h.error;
      health = h.value;
      if (!health.healthy) {
        throw new FailureError(
          `The orchestrator's health check ${check!.url}${check!.status !== undefined ? ` (expecting ${check!.status})` : ""} did not pass within ${config.launch.ready_timeout_seconds} s ` +
            `(${health.checks} checks, every ${(deps.healthIntervalMs ?? 2000) / 1000} s).`,
          { fix: "Its boot log: the instance's console output (aws) or `docker logs <id>` (local)." },
        );
      }
      events({
        type: "ready",
        role: "orchestrator",
        message: `orchestrator healthy at ${url} after ${health.checks} check(s)`,
        data: { url, checks: health.checks },
      });
    }
    const readyResults = await Promise.all(readyWaits);
    const notReady = readyResults.find((r): r is { ok: false; error: unknown } => !r.ok);
    if (notReady) throw notReady.error;
  } catch (e) {
    await cleanUp(e, started, opts, deps);
    throw e;
  }

  const report = (
    inst: StartedInstance | FoundInstance,
    g: PlannedGroup | undefined,
    reused: boolean,
  ): InstanceReport => {
    const r = ready.get(inst.id);
    const planned =
      g && typeof g.workers === "number"
        ? Array.from({ length: g.workers }, (_, i) => ({ name: `${g.role}-${i + 1}`, cpus: null }))
        : [];
    return {
      role: inst.role as Role,
      id: inst.id,
      instanceType: "instanceType" in inst ? inst.instanceType : "",
      arch: "arch" in inst ? inst.arch : null,
      market: "market" in inst ? inst.market : null,
      privateIp: inst.privateIp,
      state: r ? "ready" : inst.state,
      workers: r ? r.workers : planned,
      bootToReadySeconds: r?.bootToReadySeconds ?? null,
      startToReadySeconds: r?.startToReadySeconds ?? null,
      pulled: r ? r.pulled : null,
      reused,
    };
  };
  const groupOf = (inst: StartedInstance) =>
    groupsOf(plan).find((g) => g.role === inst.role && g.instanceType === inst.instanceType);
  const instances: InstanceReport[] = [
    ...(plan.orchestrator.reuse ? [report(plan.orchestrator.instance, undefined, true)] : []),
    ...started.map((i) => report(i, groupOf(i), false)),
  ].sort((a, b) => (a.role === b.role ? 0 : a.role === "orchestrator" ? -1 : 1));
  const orch = instances.find((i) => i.role === "orchestrator");
  events({
    type: "done",
    message: `run ${opts.runId}: ${instances.length} instance(s) on ${opts.target}${
      orch ? `, orchestrator at ${url}` : ""
    } (\`imgtool terminate --run-id ${opts.runId}${opts.target === "aws" ? " --target aws" : ""}\` ends it)`,
  });
  return {
    runId: opts.runId,
    target: opts.target,
    dryRun: false,
    label: opts.label,
    orchestrator: {
      id: orch?.id ?? null,
      url,
      reused: plan.orchestrator.reuse,
      healthy: opts.wait && check ? health.healthy : null,
      checks: health.checks,
    },
    instances,
    seconds: (now() - t0) / 1000,
  };
}

function describe(e: unknown): string {
  const name = errorName(e);
  const msg = (e as Error)?.message ?? String(e);
  return name && !isImgtoolError(e) && name !== "Error" ? `${name}: ${msg}` : msg;
}

async function cleanUp(e: unknown, started: StartedInstance[], opts: LaunchOptions, deps: LaunchDeps) {
  const ids = started.map((i) => i.id);
  if (!ids.length) return;
  if (opts.keepOnFailure) {
    deps.events({
      type: "warn",
      message:
        `the launch failed; --keep-on-failure leaves ${ids.length} instance(s) running: ${ids.join(", ")} ` +
        `(\`imgtool terminate --run-id ${opts.runId}\` ends them)`,
    });
    return;
  }
  deps.events({
    type: "fail",
    message: `the launch failed (${describe(e).split("\n")[0]}): terminating the ${ids.length} instance(s) it started: ${ids.join(", ")}`,
  });
  try {
    await deps.backend.terminate(ids);
  } catch (te) {
    deps.events({
      type: "fail",
      message: `terminating ${ids.join(", ")} failed too (${describe(te)}): end them with \`imgtool terminate --run-id ${opts.runId}\``,
    });
  }
}

function groupsOf(plan: LaunchPlan): PlannedGroup[] {
  return [...(plan.orchestrator.reuse ? [] : [plan.orchestrator.group]), ...plan.taskRunners];
}

async function resolveAll(
  opts: LaunchOptions,
  deps: LaunchDeps,
  secretNames: string[],
  reusing: boolean,
): Promise<Resolved> {
  const { config, events } = deps;
  const catalog = await deps.catalog();
  const machineArch: Arch = process.arch === "arm64" ? "arm64" : "x86_64";
  const archFor = (type: string): Arch => (opts.target === "local" ? machineArch : archOf(type));
  const amis: { role: Role; arch: Arch }[] = [];
  const images: Role[] = [];
  if (!reusing) {
    amis.push({ role: "orchestrator", arch: archFor(config.roles.orchestrator.instance_types[0]!) });
    images.push("orchestrator");
  }
  if (opts.taskRunners > 0) {
    for (const arch of new Set(opts.instanceTypes.map(archFor))) amis.push({ role: "task-runner", arch });
    images.push("task-runner");
  }
  const resolved = await resolveForLaunch(catalog, { amis, images, extraNames: secretNames }, opts.label);
  events({
    type: "check",
    message: `resolved ${resolved.names.length} catalog name(s) in ${Math.ceil(resolved.names.length / catalog.store.maxBatch)} batched call(s)`,
    data: { names: resolved.names },
  });
  return resolved;
}

/** The plan as plain JSON (dry run): groups, ids, workers and CPUs, the user-data as text. */
export function planJson(plan: LaunchPlan) {
  const group = (g: PlannedGroup) => ({
    role: g.role,
    instanceType: g.instanceType,
    arch: g.arch,
    count: g.count,
    market: g.market,
    ami: g.imageId,
    amiVersion: g.amiVersion,
    image: g.image,
    imageVersion: g.imageVersion,
    bakedImage: g.bakedImage,
    workers: g.workers,
    instanceCpus: g.instanceCpus?.map(formatCpuList) ?? null,
    workerCpus: g.workerCpus?.map((w) => w.map(String)) ?? null,
    userData: { bytes: g.userData.bytes.length, compression: g.userData.compression, text: g.userData.text },
  });
  return {
    runId: plan.runId,
    target: plan.target,
    pipeline: plan.pipeline,
    label: plan.label,
    region: plan.region,
    orchestrator: plan.orchestrator.reuse
      ? { reuse: true as const, id: plan.orchestrator.instance.id, url: plan.orchestrator.url }
      : { reuse: false as const, url: plan.orchestrator.url ?? null, group: group(plan.orchestrator.group) },
    taskRunners: plan.taskRunners.map(group),
    warnings: plan.warnings,
  };
}
