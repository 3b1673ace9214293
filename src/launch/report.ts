/**
 * The launch's report: what a dry run would start, or what this launch started (each instance, its readiness and
 * workers, the orchestrator's address and health), and the plan as plain JSON.
 */
import type { Role } from "../config/schema.js";
import { formatCpuList } from "./cpus.js";
import { groupsOf } from "./plan.js";
import type { Started } from "./start.js";
import type {
  FoundInstance,
  InstanceReport,
  LaunchDeps,
  LaunchOptions,
  LaunchPlan,
  LaunchResult,
  PlannedGroup,
  StartedInstance,
} from "./types.js";

/** A dry run's result: the plan, nothing started. */
export function plannedResult(opts: LaunchOptions, plan: LaunchPlan, seconds: number): LaunchResult {
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
    seconds,
  };
}

/** The instances this launch started (and the orchestrator it kept), reported; the closing event. */
export function launchedResult(
  opts: LaunchOptions,
  plan: LaunchPlan,
  s: Started,
  deps: Pick<LaunchDeps, "events">,
  elapsed: () => number,
): LaunchResult {
  const { url, started, ready, health } = s;
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
      bootSteps: r?.bootSteps ?? null,
      startToReadySeconds: r?.startToReadySeconds ?? null,
      launchToReadySeconds: r?.launchToReadySeconds ?? null,
      ...(r?.stackReadySeconds !== undefined ? { stackReadySeconds: r.stackReadySeconds } : {}),
      ...(r?.stack ? { stack: r.stack } : {}),
      ...(r?.prewarmSeconds !== undefined ? { prewarmSeconds: r.prewarmSeconds } : {}),
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
  deps.events({
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
      healthy: opts.wait && health.checked !== false ? health.healthy : null,
      checks: health.checks,
    },
    instances,
    seconds: elapsed(),
  };
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
    stack: g.stack ?? false,
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
