/** `imgtool calibrate`: parse the flags, wire the launch and the on-instance scripts, show and write the report. */
import { mkdir, writeFile } from "node:fs/promises";
import path from "node:path";
import { UsageError } from "../../errors.js";
import type { Context, GlobalArgs } from "../context.js";
import { humanCalibration } from "../views/calibrate.js";

export interface CalibrateArgs {
  role: string;
  "instance-types"?: string;
  workers?: string;
  benchmarks?: string;
  repetitions?: number;
  channel?: string;
  "run-id"?: string;
  out?: string;
}

const list = (v: string | undefined) =>
  v
    ?.split(",")
    .map((s) => s.trim())
    .filter(Boolean);

export function parseWorkerCounts(value: string | undefined): number[] | undefined {
  const parts = list(value);
  if (!parts) return undefined;
  const bad = parts.find((p) => !/^\d+$/.test(p) || Number(p) < 1 || Number(p) > 192);
  if (bad !== undefined || parts.length === 0) {
    throw new UsageError(
      `--workers ${JSON.stringify(value)}: give worker counts from 1 to 192, e.g. --workers 1,2,4.`,
    );
  }
  return parts.map(Number);
}

export async function calibrateCommand(ctx: Context, args: GlobalArgs & CalibrateArgs): Promise<number> {
  if (args.role !== "task-runner") {
    throw new UsageError(
      `--role ${args.role}: only task runners run benchmarks; calibrate --role task-runner.`,
    );
  }
  const { config } = ctx;
  const cal = config.calibration;
  const benchmarks = list(args.benchmarks) ?? cal.benchmarks;
  const bad = benchmarks.find((b) => !/^[A-Za-z0-9_-]{1,100}$/.test(b));
  if (bad !== undefined)
    throw new UsageError(`--benchmarks: ${JSON.stringify(bad)} is not a benchmark name such as fib.`);
  const repetitions = args.repetitions ?? cal.repetitions;
  if (!Number.isInteger(repetitions) || repetitions < 1 || repetitions > 100) {
    throw new UsageError(`--repetitions ${repetitions}: give a whole number from 1 to 100.`);
  }
  const workers = parseWorkerCounts(args.workers) ?? cal.workers;
  const { calibrate } = await import("../../calibrate/run.js");
  const { launch } = await import("../../launch/launch.js");
  const { terminateRun } = await import("../../launch/terminate.js");
  const { newRunId } = await import("../../launch/ids.js");
  const { defaultLabel } = await import("../../launch/channel.js");
  const launchDeps = await ctx.deps.launch();
  const runScript = await scriptRunner(ctx);
  const result = await calibrate(
    {
      target: ctx.target,
      runId: args["run-id"] ?? `calib-${newRunId()}`.slice(0, 32),
      instanceTypes: list(args["instance-types"]) ?? config.roles["task-runner"].instance_types.slice(0, 1),
      ...(workers ? { workers } : {}),
      benchmarks,
      label: args.channel ?? (await defaultLabel(await ctx.deps.catalog(), (m) => ctx.out.warn(m))),
      dryRun: ctx.dryRun,
      settings: { ...cal, repetitions },
    },
    {
      launch: (o) => launch(o, launchDeps),
      terminate: async (runId) => {
        await terminateRun({ runId, dryRun: false }, { backend: launchDeps.backend, events: ctx.out.event });
      },
      runScript,
      catalog: () => ctx.deps.catalog(),
      events: ctx.out.event,
      signal: ctx.signal,
    },
  );
  const charts: string[] = [];
  if (args.out && !result.dryRun) {
    const { calibrationSvg } = await import("../../calibrate/svg.js");
    await mkdir(args.out, { recursive: true });
    for (const c of result.calibrations) {
      const base = path.join(args.out, `calibration-${c.instanceType}-${c.version}`);
      await writeFile(`${base}.svg`, calibrationSvg(c));
      await writeFile(`${base}.json`, `${JSON.stringify(c, null, 2)}\n`);
      charts.push(`${base}.svg`);
    }
  }
  ctx.out.result({ ...result, charts }, () =>
    [humanCalibration(result), ...charts.map((c) => `chart: ${c}`)].join("\n"),
  );
  return 0;
}

/** Where the calibration's scripts run: exec in the local instance, or SSM Run Command on the aws instance. */
async function scriptRunner(ctx: Context) {
  if (ctx.target === "aws") {
    const { runCommandScript } = await import("../../calibrate/run.js");
    return runCommandScript(await ctx.deps.runOnInstance());
  }
  const { execIn } = await import("../../launch/local.js");
  const docker = await ctx.docker();
  return async (id: string, script: string[], timeoutSeconds: number) => {
    const r = await execIn(docker.getContainer(id), script.join("\n"), timeoutSeconds * 1000);
    return { exitCode: r.exitCode, stdout: r.output, stderr: "" };
  };
}
