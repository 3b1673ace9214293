/**
 * `workers_per_instance: calibrated`: each instance type launches as many workers as the calibration recorded
 * for the task-runner version being launched recommends. The version comes from the launch's own plan (a dry
 * run through the launch flow, which resolves the label), so the channel rules stay the launch's.
 */
import type { Catalog } from "../catalog/catalog.js";
import { UsageError } from "../errors.js";
import type { LaunchOptions, LaunchResult } from "../launch/types.js";
import { calibrationFor } from "./records.js";

/** The recommended workers per instance type, or a usage error naming the command that records them. */
export async function calibratedWorkers(
  opts: LaunchOptions,
  deps: { plan(opts: LaunchOptions): Promise<LaunchResult>; catalog(): Promise<Catalog> },
): Promise<Record<string, number>> {
  const planned = await deps.plan({ ...opts, workersPerInstance: 1, dryRun: true });
  const catalog = await deps.catalog();
  const out: Record<string, number> = {};
  const missing: { type: string; version: string }[] = [];
  for (const g of planned.plan?.taskRunners ?? []) {
    const rec = await calibrationFor(catalog, g.amiVersion, g.instanceType);
    if (rec) out[g.instanceType] = rec.recommendedWorkers;
    else missing.push({ type: g.instanceType, version: g.amiVersion });
  }
  if (missing.length) {
    const target = opts.target === "aws" ? " --target aws" : "";
    throw new UsageError(
      `roles.task-runner.workers_per_instance is calibrated, but no calibration is recorded for ${missing
        .map((m) => `${m.type} with task-runner version ${m.version}`)
        .join(", ")}. Nothing was launched.`,
      {
        fix:
          `Run \`imgtool calibrate --instance-types ${missing.map((m) => m.type).join(",")} --channel ${opts.label}${target}\`, ` +
          "or launch with --workers-per-instance auto or a number.",
      },
    );
  }
  return out;
}
