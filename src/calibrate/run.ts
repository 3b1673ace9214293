/**
 * `imgtool calibrate`: launch one task runner of the baked version per instance type (with an orchestrator, as
 * every launch), quiet its workers, run the benchmarks from the role's baked ruby-bench cache inside the role's
 * container in every layout (1 worker alone, then N pinned workers at once, then N unpinned), several
 * repetitions each, summarise, recommend, record the result with the version in the catalog, and always end the
 * run. The scripts run on the instance through `runScript` (local: exec in the local instance; aws: SSM Run
 * Command). The flow never prints: it emits events.
 */
import type { RunOnInstance } from "../aws/run-command.js";
import { RUN_COMMAND_STDOUT_MAX_CHARS } from "../aws/run-command-limits.js";
import type { Catalog } from "../catalog/catalog.js";
import type { CalibrationConfig } from "../config/calibration.js";
import { FailureError, InterruptedError, UsageError, stopSignalOf } from "../errors.js";
import type { EventSink } from "../events.js";
import type { InstanceReport, LaunchOptions, LaunchResult } from "../launch/types.js";
import {
  defaultCounts,
  layoutsFor,
  parseSamples,
  recommend,
  summarise,
  toRecord,
  RESULT_MARK,
  type InstanceCalibration,
  type Sample,
} from "./calibrate.js";
import { recordCalibration } from "./records.js";
import { layoutScript, quietScript } from "./script.js";

/** How one script ended on the instance. */
export interface ScriptOutcome {
  exitCode: number;
  stdout: string;
  stderr: string;
  /** aws: SSM Run Command returned only the start of stdout (its first 24,000 characters); the rest is lost. */
  stdoutCut?: boolean;
}

export type RunScript = (
  instanceId: string,
  script: string[],
  timeoutSeconds: number,
) => Promise<ScriptOutcome>;

/** aws: the scripts run through SSM Run Command (`AWS-RunShellScript`), as the health and smoke checks do. */
export function runCommandScript(run: RunOnInstance): RunScript {
  return async (id, script, timeoutSeconds) => {
    const r = await run(id, script, { timeoutSeconds, comment: "imgtool calibrate" });
    if (r.status === "Unreachable") {
      return { exitCode: -1, stdout: "", stderr: `SSM Run Command cannot reach ${id} (${r.stderr})` };
    }
    return {
      exitCode: r.exitCode,
      stdout: r.stdout,
      stderr: r.stderr,
      ...(r.truncated?.stdout ? { stdoutCut: true } : {}),
    };
  };
}

export interface CalibrateOptions {
  target: "local" | "aws";
  runId: string;
  instanceTypes: string[];
  /** Worker counts; default from the instance's physical cores ({@link defaultCounts}). */
  workers?: number[];
  benchmarks: string[];
  /** The catalog label (channel) to launch. */
  label: string;
  dryRun: boolean;
  settings: Pick<
    CalibrationConfig,
    "repetitions" | "warmup_iterations" | "iterations" | "max_slowdown" | "max_cv" | "timeout_seconds"
  >;
}

export interface CalibrateDeps {
  /** The launch flow, wired to the target. */
  launch(opts: LaunchOptions): Promise<LaunchResult>;
  /** End the run (every instance it started). */
  terminate(runId: string): Promise<void>;
  runScript: RunScript;
  catalog(): Promise<Catalog>;
  events: EventSink;
  now?: () => Date;
  /** The run's interrupt: no further layout starts, and the run is ended. */
  signal?: AbortSignal;
}

export interface CalibrateResult {
  runId: string;
  target: "local" | "aws";
  dryRun: boolean;
  label: string;
  calibrations: InstanceCalibration[];
  /** The catalog parameter of each recorded calibration. */
  recorded: string[];
  /** Dry run: what would be launched, per instance type. */
  planned?: { instanceType: string; version: string; image: string; workers: "auto" | number }[];
}

function launchOptions(o: CalibrateOptions, workers: "auto" | number, dryRun: boolean): LaunchOptions {
  return {
    target: o.target,
    runId: o.runId,
    taskRunners: 1,
    instanceTypes: o.instanceTypes,
    spot: false,
    workersPerInstance: workers,
    reuseOrchestrator: false,
    keepOnFailure: false,
    wait: true,
    dryRun,
    label: o.label,
  };
}

export async function calibrate(o: CalibrateOptions, deps: CalibrateDeps): Promise<CalibrateResult> {
  const counts = o.workers ? [...new Set([1, ...o.workers])].sort((a, b) => a - b) : undefined;
  const launchWorkers = counts ? Math.max(...counts) : ("auto" as const);
  // The plan first: which version and image each instance type launches (the launch resolves the label).
  const planned = await deps.launch(launchOptions(o, launchWorkers, true));
  const groups = planned.plan?.taskRunners ?? [];
  const plannedRows = groups.map((g) => ({
    instanceType: g.instanceType,
    version: g.amiVersion,
    image: g.image,
    workers: g.workers,
  }));
  if (o.dryRun) {
    return {
      runId: o.runId,
      target: o.target,
      dryRun: true,
      label: o.label,
      calibrations: [],
      recorded: [],
      planned: plannedRows,
    };
  }
  deps.events({
    type: "start",
    message: `calibrating ${o.instanceTypes.join(", ")}: ${o.benchmarks.join(", ")}, ${o.settings.repetitions} repetition(s) per layout (run ${o.runId})`,
  });
  let launched: LaunchResult | undefined;
  try {
    launched = await deps.launch(launchOptions(o, launchWorkers, false));
    const runners = launched.instances.filter((i) => i.role === "task-runner" && !i.reused);
    const calibrations = await Promise.all(
      runners.map((inst) => {
        const g = plannedRows.find((p) => p.instanceType === inst.instanceType);
        if (!g) throw new Error(`no plan for the task runner ${inst.id} (${inst.instanceType})`);
        return calibrateInstance(o, deps, inst, g, counts);
      }),
    );
    const recorded: string[] = [];
    const catalog = await deps.catalog();
    const at = (deps.now ?? (() => new Date()))();
    for (const c of calibrations) {
      const name = await recordCalibration(catalog, toRecord(c, o.target, at));
      recorded.push(name);
      deps.events({
        type: "publish",
        role: "task-runner",
        message: `recorded the calibration of ${c.instanceType} for ${c.version} at ${name}: ${c.recommendation.workers} worker(s) per instance`,
        data: { name, version: c.version, instanceType: c.instanceType, workers: c.recommendation.workers },
      });
    }
    return { runId: o.runId, target: o.target, dryRun: false, label: o.label, calibrations, recorded };
  } finally {
    if (launched) await deps.terminate(o.runId);
  }
}

async function calibrateInstance(
  o: CalibrateOptions,
  deps: CalibrateDeps,
  inst: InstanceReport,
  g: { instanceType: string; version: string; image: string },
  asked: number[] | undefined,
): Promise<InstanceCalibration> {
  const cpus = inst.workers.map((w) => w.cpus).filter((c): c is string => !!c);
  if (cpus.length === 0) {
    throw new FailureError(
      `The task runner ${inst.id} reported no worker CPUs: nothing to pin benchmarks to.`,
    );
  }
  const counts = asked ?? defaultCounts(cpus.length);
  const layouts = layoutsFor(counts);
  const timeout = o.settings.timeout_seconds;
  const quiet = await deps.runScript(
    inst.id,
    quietScript(inst.workers.map((w) => w.name)),
    Math.min(timeout, 120),
  );
  if (quiet.exitCode !== 0 || !quiet.stdout.includes(`${RESULT_MARK} quiet`)) {
    throw new FailureError(
      `Stopping the workers of ${inst.id} failed (exit ${quiet.exitCode}): ${(quiet.stderr || quiet.stdout).slice(-800)}`,
    );
  }
  const samples: Sample[] = [];
  for (const benchmark of o.benchmarks) {
    for (const layout of layouts) {
      if (deps.signal?.aborted) {
        const sig = stopSignalOf(deps.signal);
        throw new InterruptedError(
          `The calibration of ${inst.instanceType} was interrupted (${sig}): its run is ended.`,
          sig,
        );
      }
      deps.events({
        type: "progress",
        role: "task-runner",
        message: `${inst.instanceType} ${inst.id}: ${benchmark}, ${layout.name}, ${o.settings.repetitions} repetition(s)`,
      });
      const script = layoutScript({
        image: g.image,
        benchmark,
        layout,
        cpus,
        repetitions: o.settings.repetitions,
        warmupIterations: o.settings.warmup_iterations,
        iterations: o.settings.iterations,
      });
      const r = await deps.runScript(inst.id, script, timeout);
      if (r.exitCode !== 0) {
        const text = `${r.stdout}\n${r.stderr}`.trim().slice(-1500);
        if (/no benchmark \S+ in /.test(text)) {
          throw new UsageError(
            `The benchmark ${benchmark} is not in the ruby-bench cache of ${g.image}: ${text}`,
            {
              fix: "Name benchmarks of the baked ruby-bench checkout (--benchmarks or calibration.benchmarks).",
            },
          );
        }
        throw new FailureError(
          `${benchmark} (${layout.name}) failed on ${inst.id} (exit ${r.exitCode}):\n${text}`,
        );
      }
      if (r.stdoutCut) {
        throw new UsageError(
          `${benchmark} (${layout.name}) on ${inst.id}: its results (${layout.workers} worker(s) x ${o.settings.repetitions} repetition(s)) are longer than the ${RUN_COMMAND_STDOUT_MAX_CHARS.toLocaleString("en-US")} characters of output SSM Run Command returns: the end of them is lost.`,
          {
            fix: "Ask for fewer results per layout: fewer repetitions or iterations (calibration.repetitions, calibration.iterations) or fewer workers (--workers).",
          },
        );
      }
      const got = parseSamples(r.stdout, benchmark, layout.name);
      if (got.length !== layout.workers * o.settings.repetitions) {
        throw new FailureError(
          `${benchmark} (${layout.name}) on ${inst.id}: ${got.length} result(s), expected ${layout.workers * o.settings.repetitions}:\n${r.stdout.slice(-800)}`,
        );
      }
      samples.push(...got);
    }
  }
  const rows = summarise(samples, layouts, o.benchmarks);
  const thresholds = { maxSlowdown: o.settings.max_slowdown, maxCv: o.settings.max_cv };
  return {
    instanceType: inst.instanceType,
    version: g.version,
    image: g.image,
    instanceId: inst.id,
    workerCpus: cpus.slice(0, Math.max(...counts)),
    layouts,
    rows,
    thresholds,
    recommendation: recommend(rows, thresholds),
  };
}
