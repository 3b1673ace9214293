/** `imgtool launch`: parse the flags, build the target's backend, call the launch flow, show the result. */
import { writeFile } from "node:fs/promises";
import { UsageError } from "../../errors.js";
import type { LaunchOptions } from "../../launch/types.js";
import type { Context, GlobalArgs } from "../context.js";
import { humanPlan, humanResult } from "../views/launch.js";

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

export function parseWorkers(value: string | undefined): "auto" | "calibrated" | number | undefined {
  if (value === undefined) return undefined;
  if (value === "auto" || value === "calibrated") return value;
  const n = Number(value);
  if (!/^\d+$/.test(value) || n < 1 || n > 192) {
    throw new UsageError(
      `--workers-per-instance ${JSON.stringify(value)}: use auto, calibrated or a whole number from 1 to 192.`,
    );
  }
  return n;
}

/** The flags, with the config's values where a flag is not given. */
async function launchOptions(ctx: Context, args: GlobalArgs & LaunchArgs): Promise<LaunchOptions> {
  const { config } = ctx;
  const { newRunId } = await import("../../launch/ids.js");
  const { defaultLabel } = await import("../../launch/channel.js");
  const runner = config.roles["task-runner"];
  const workers = parseWorkers(args["workers-per-instance"]) ?? runner.workers_per_instance;
  const opts: LaunchOptions = {
    target: ctx.target,
    runId: args["run-id"] ?? newRunId(),
    taskRunners: args["task-runners"],
    instanceTypes: args["instance-types"]
      ? args["instance-types"]
          .split(",")
          .map((t) => t.trim())
          .filter(Boolean)
      : runner.instance_types,
    spot: args.spot ?? config.aws.spot,
    workersPerInstance: workers === "calibrated" ? 1 : workers,
    reuseOrchestrator: args["reuse-orchestrator"],
    keepOnFailure: args["keep-on-failure"],
    wait: args.wait,
    dryRun: ctx.dryRun,
    label:
      args.channel ??
      (await defaultLabel(
        await ctx.deps.catalog(),
        (m) => ctx.out.warn(m),
        await ctx.deps.catalog(ctx.target === "aws" ? ctx.regions[0] : undefined),
      )),
  };
  if (workers !== "calibrated" || opts.taskRunners === 0) return opts;
  // workers_per_instance: calibrated: what `imgtool calibrate` recorded for the version and each type.
  const { calibratedWorkers } = await import("../../calibrate/workers.js");
  const { launch } = await import("../../launch/launch.js");
  const launchDeps = await ctx.deps.launch();
  const byType = await calibratedWorkers(opts, {
    plan: (o) => launch(o, { ...launchDeps, events: () => {} }),
    catalog: () => ctx.deps.catalog(),
  });
  return { ...opts, workersPerInstance: Math.max(...Object.values(byType)), workersByType: byType };
}

export async function launchCommand(ctx: Context, args: GlobalArgs & LaunchArgs): Promise<number> {
  const opts = await launchOptions(ctx, args);
  if (args.emit === "tfvars") return emitTfvars(ctx, opts, args.out);
  if (args.out) throw new UsageError("--out goes with --emit tfvars.");

  const { launch, planJson } = await import("../../launch/launch.js");
  const result = await launch(opts, await ctx.deps.launch());
  const plan = result.plan ? planJson(result.plan) : undefined;
  ctx.out.result({ ...result, plan }, () => (plan ? humanPlan(plan) : humanResult(result)));
  return 0;
}

/** --emit tfvars [--out FILE]: the resolved ids as a Terraform variables file, printed or written. */
async function emitTfvars(ctx: Context, opts: LaunchOptions, out: string | undefined): Promise<number> {
  const { launchTfvars } = await import("../../launch/plan.js");
  const text = await launchTfvars(ctx.config, await ctx.deps.catalog(), opts, ctx.targetRegion);
  if (out && !ctx.dryRun) {
    await writeFile(out, text);
    ctx.out.result({ written: out, tfvars: text }, () => `wrote ${out}`);
  } else {
    ctx.out.result({ written: null, tfvars: text }, () => text);
  }
  return 0;
}
