/** `imgtool launch`: parse the flags, build the target's backend, call the launch flow, show the result. */
import { writeFile } from "node:fs/promises";
import { UsageError } from "../../errors.js";
import type { LaunchOptions, LaunchResult } from "../../launch/types.js";
import type { Context, GlobalArgs } from "../context.js";
import { table } from "../output.js";

export interface LaunchArgs {
  "run-id"?: string;
  "task-runners": number;
  "instance-types"?: string;
  spot?: boolean;
  "workers-per-instance"?: string;
  "reuse-orchestrator": boolean;
  "keep-on-failure": boolean;
  wait: boolean;
  channel?: string;
  emit?: "tfvars";
  out?: string;
}

export function parseWorkers(value: string | undefined): "auto" | number | undefined {
  if (value === undefined) return undefined;
  if (value === "auto") return "auto";
  const n = Number(value);
  if (!/^\d+$/.test(value) || n < 1 || n > 192) {
    throw new UsageError(
      `--workers-per-instance ${JSON.stringify(value)}: use auto or a whole number from 1 to 192.`,
    );
  }
  return n;
}

/**
 * `stable` (what a passing pipeline promoted), or `latest` with a warning while nothing is stable yet (right
 * after a first push and bake by hand).
 */
async function defaultChannel(ctx: Context): Promise<string> {
  const { ROLES } = await import("../../config/schema.js");
  const catalog = await ctx.deps.catalog();
  const { missing } = await catalog.resolve(
    ROLES.map((role) => ({ role, kind: "image" as const })),
    { label: "stable" },
  );
  if (missing.length === 0) return "stable";
  ctx.out.warn(
    `nothing is promoted to stable for ${missing.map((k) => k.role).join(", ")} yet (\`imgtool pipeline\` does that after a smoke launch): launching latest`,
  );
  return "latest";
}

export async function launchCommand(ctx: Context, args: GlobalArgs & LaunchArgs): Promise<number> {
  const { config } = ctx;
  const { newRunId } = await import("../../launch/ids.js");
  const region = ctx.targetRegion;
  const instanceTypes = args["instance-types"]
    ? args["instance-types"]
        .split(",")
        .map((t) => t.trim())
        .filter(Boolean)
    : config.roles["task-runner"].instance_types;
  const opts: LaunchOptions = {
    target: ctx.target,
    runId: args["run-id"] ?? newRunId(),
    taskRunners: args["task-runners"],
    instanceTypes,
    spot: args.spot ?? config.aws.spot,
    workersPerInstance:
      parseWorkers(args["workers-per-instance"]) ?? config.roles["task-runner"].workers_per_instance,
    reuseOrchestrator: args["reuse-orchestrator"],
    keepOnFailure: args["keep-on-failure"],
    wait: args.wait,
    dryRun: ctx.dryRun,
    label: args.channel ?? (await defaultChannel(ctx)),
  };

  if (args.emit === "tfvars") return emitTfvars(ctx, opts, region, args.out);
  if (args.out) throw new UsageError("--out goes with --emit tfvars.");

  const { launch, planJson } = await import("../../launch/launch.js");
  const result = await launch(opts, await ctx.deps.launch());
  const plan = result.plan ? planJson(result.plan) : undefined;
  ctx.out.result({ ...result, plan }, () => (plan ? humanPlan(plan) : humanResult(result)));
  return 0;
}

async function emitTfvars(ctx: Context, opts: LaunchOptions, region: string, out: string | undefined) {
  const { resolveTfvars } = await import("../../launch/plan.js");
  const { renderTfvars } = await import("../../render/tfvars.js");
  const { config } = ctx;
  const catalog = await ctx.deps.catalog();
  const text = renderTfvars(
    await resolveTfvars(config, catalog, {
      label: opts.label,
      region,
      taskRunnerTypes: opts.instanceTypes,
      local: ctx.target === "local",
      apiKeyParameter:
        config.aws.api_key_parameter ?? `${config.aws.ssm_prefix}/secrets/orchestrator-api-key`,
    }),
  );
  if (out && !ctx.dryRun) {
    await writeFile(out, text);
    ctx.out.result({ written: out, tfvars: text }, () => `wrote ${out}`);
  } else {
    ctx.out.result({ written: null, tfvars: text }, () => text);
  }
  return 0;
}

const secs = (s: number | null) => (s === null ? "-" : `${s.toFixed(3)} s`);

function humanResult(r: LaunchResult): string {
  const rows = r.instances.map((i) => [
    i.role,
    i.id,
    i.instanceType || "-",
    i.market ?? "-",
    i.privateIp || "-",
    i.workers.length
      ? i.workers.map((w) => `${w.name}${w.cpus === null ? "" : ` (CPU ${w.cpus})`}`).join(", ")
      : "one per physical core, pinned at boot",
    i.reused ? "kept" : i.state,
    secs(i.bootToReadySeconds),
    // aws: from the RunInstances answer to the instance's ready record.
    ...(r.target === "aws" ? [secs(i.launchToReadySeconds)] : []),
  ]);
  const head = `Run ${r.runId} on ${r.target}: orchestrator ${r.orchestrator.url ?? "-"}${
    r.orchestrator.healthy === null
      ? ""
      : r.orchestrator.healthy
        ? ` (healthy after ${r.orchestrator.checks} check${r.orchestrator.checks === 1 ? "" : "s"})`
        : " (not healthy)"
  }`;
  return [
    head,
    table(
      [
        ...["ROLE", "ID", "TYPE", "MARKET", "ADDRESS", "WORKERS", "STATE", "BOOT-TO-READY"],
        ...(r.target === "aws" ? ["LAUNCH-TO-READY"] : []),
      ],
      rows,
    ),
    `End it with: imgtool terminate --run-id ${r.runId}${r.target === "aws" ? " --target aws" : ""}`,
  ].join("\n");
}

type PlanJson = ReturnType<typeof import("../../launch/launch.js").planJson>;

function humanPlan(p: PlanJson): string {
  const groups = [...(p.orchestrator.reuse ? [] : [p.orchestrator.group]), ...p.taskRunners];
  const rows = groups.map((g) => [
    g.role,
    String(g.count),
    g.instanceType,
    g.arch,
    g.market,
    `${g.ami} (${g.amiVersion})`,
    `${g.image} (${g.imageVersion})`,
    g.bakedImage === g.image ? "yes" : "no (pulls at boot)",
    g.workerCpus
      ? g.workerCpus.map((w, i) => `#${i + 1}: ${w.length} on CPU ${w.join(",")}`).join("; ")
      : g.workers === "auto"
        ? "auto: one per physical core, read at boot"
        : `${g.workers}, first ${g.workers} CPUs at boot (physical cores first)`,
  ]);
  const lines = [
    `Plan for run ${p.runId} on ${p.target} (pipeline ${p.pipeline}, label ${p.label}, region ${p.region}); nothing was changed.`,
    p.orchestrator.reuse
      ? `Orchestrator: keep ${p.orchestrator.id} at ${p.orchestrator.url}`
      : `Orchestrator: new; task runners get ${p.orchestrator.url ?? "its private address from its RunInstances answer"}`,
    table(["ROLE", "COUNT", "TYPE", "ARCH", "MARKET", "AMI", "IMAGE", "BAKED", "WORKERS"], rows),
    ...p.warnings.map((w) => `warning: ${w}`),
  ];
  for (const g of groups) {
    lines.push(
      "",
      `----- user-data of ${g.role} (${g.instanceType}): ${g.userData.bytes} bytes${g.userData.compression === "gzip" ? " gzip-compressed" : ""} -----`,
      g.userData.text.trimEnd(),
    );
  }
  return lines.join("\n");
}
