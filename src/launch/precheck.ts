/**
 * The launch's checks before work: every role's user-data against EC2's 16 KB limit (at its largest) before any
 * API call; a running orchestrator to keep (`reuseOrchestrator`); every id resolved in one batched catalog call;
 * the API key's SSM parameter present; the plan, its exact user-data checked against the limit again; the AMIs
 * (or twins) present; every image an instance would pull present in its registry. Nothing missing, nothing too big, nothing started.
 */
import { secretsUsed } from "../config/workload.js";
import type { Config } from "../config/load.js";
import type { Arch, Role } from "../config/schema.js";
import { targetArch } from "../config/arch.js";
import { UsageError } from "../errors.js";
import { fixedWorkers } from "../config/calibration.js";
import { checkUserDataSize, worstCaseSize } from "../render/user-data.js";
import { checkRunId } from "./ids.js";
import { checkPulls } from "./image-check.js";
import {
  buildPlan,
  checkOptions,
  groupsOf,
  resolveForLaunch,
  userDataValues,
  type Resolved,
} from "./plan.js";
import type { BootContext, FoundInstance, LaunchDeps, LaunchOptions, LaunchPlan } from "./types.js";

const PLACEHOLDER_IMAGE = "registry.invalid/placeholder@sha256:" + "0".repeat(64);

/** Check, resolve and plan; unless a dry run, the target is prepared and the plan's images are checked. */
export async function precheck(
  opts: LaunchOptions,
  deps: LaunchDeps,
): Promise<{ ctx: BootContext; plan: LaunchPlan }> {
  const { config, backend, events } = deps;
  checkRunId(opts.runId);
  checkOptions(opts);
  const compression = config.launch.user_data_compression;
  const ctx = await backend.bootContext(opts.runId);

  // 1. The 16 KB limit, before any API call: each role's user-data with the longest values the catalog can hold
  //    (the orchestrator's too with --reuse-orchestrator: none may be running).
  const roles: Role[] = ["orchestrator", ...(opts.taskRunners > 0 ? (["task-runner"] as const) : [])];
  for (const role of roles) {
    const values = userDataValues(config, opts, ctx, role, {
      version: "v0",
      image: PLACEHOLDER_IMAGE,
      bakedImage: null,
      workers:
        role === "task-runner"
          ? opts.workersPerInstance
          : fixedWorkers(config.roles.orchestrator.workers_per_instance),
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
  const reuse = opts.reuseOrchestrator ? await findReusable(config, deps) : undefined;

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
  if (!opts.dryRun && backend.checkImages) {
    await backend.checkImages([...new Set(groupsOf(plan).map((g) => g.imageId))]);
  }
  if (!opts.dryRun && deps.imageProbe) {
    const needs = groupsOf(plan).map((g) => ({
      role: g.role,
      image: g.image,
      version: g.imageVersion,
      bakedImage: g.bakedImage,
    }));
    await checkPulls(needs, deps.imageProbe, { label: opts.label, events });
  }
  return { ctx, plan };
}

async function findReusable(config: Config, deps: LaunchDeps): Promise<FoundInstance | undefined> {
  const { backend, events } = deps;
  const running = (await backend.find({ role: "orchestrator", running: true })).filter(
    (i) => i.state === "running",
  );
  const reuse = running[0];
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
  return reuse;
}

async function resolveAll(
  opts: LaunchOptions,
  deps: LaunchDeps,
  secretNames: string[],
  reusing: boolean,
): Promise<Resolved> {
  const { config, events } = deps;
  const catalog = await deps.catalog();
  const archFor = (type: string): Arch => targetArch(opts.target, type);
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
  const resolved = await resolveForLaunch(catalog, { amis, images, extraNames: secretNames }, opts.label, {
    ...(deps.releaseCatalog ? { releaseCatalog: await deps.releaseCatalog() } : {}),
  });
  if (resolved.source === "labels" && (opts.label === "latest" || opts.label === "stable")) {
    events({
      type: "warn",
      message: `no release carries ${opts.label} yet: launching what each artefact's own ${opts.label} label points at (\`imgtool bake ami\` or \`imgtool pipeline\` records a release)`,
    });
  }
  events({
    type: "check",
    message: `resolved ${resolved.names.length} catalog name(s) in ${Math.ceil(resolved.names.length / catalog.store.maxBatch)} batched call(s)${resolved.release ? ` (release ${resolved.release})` : ""}`,
    data: { names: resolved.names, release: resolved.release ?? null },
  });
  return resolved;
}
