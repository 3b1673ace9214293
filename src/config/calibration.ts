/**
 * The config of `imgtool calibrate` (issue 12): which benchmarks, worker counts and repetitions a calibration
 * runs, and the thresholds its recommendation follows; and `workers_per_instance: calibrated`, which launches as
 * many workers as the calibration recorded for the version and instance type recommends.
 */
import { z } from "zod";

const msg = (error: string) => ({ error });

/** The value of `roles.task-runner.workers_per_instance` that takes the recorded calibration's count. */
export const CALIBRATED = "calibrated";

/** `workers_per_instance: calibrated`, task runners only (schema.ts adds it to that role's choices). */
export const calibratedWorkers = z.literal(CALIBRATED);

const BENCHMARK_RE = /^[A-Za-z0-9_-]{1,100}$/;

export const CalibrationSchema = z
  .strictObject({
    benchmarks: z
      .array(z.string().regex(BENCHMARK_RE, msg("must be a benchmark name such as fib")))
      .min(1, msg("needs at least one benchmark"))
      .default(["fib"])
      .describe(
        "ruby-bench benchmarks a calibration runs (benchmarks/<name>.rb or benchmarks/<name>/benchmark.rb).",
      ),
    workers: z
      .array(z.number().int(msg("must be a whole number")).min(1).max(192))
      .min(1, msg("needs at least one worker count"))
      .optional()
      .describe(
        "Worker counts to measure (1 alone is always measured); default: 1, 2, 4, ... up to the instance's physical cores, and that count.",
      ),
    repetitions: z
      .number()
      .int(msg("must be a whole number"))
      .min(1)
      .max(100)
      .default(5)
      .describe("Runs of each benchmark per layout (each worker runs it once per repetition)."),
    warmup_iterations: z
      .number()
      .int()
      .min(0)
      .max(100)
      .default(1)
      .describe("Harness warm-up iterations of each run (WARMUP_ITRS), not measured."),
    iterations: z
      .number()
      .int()
      .min(1)
      .max(1000)
      .default(5)
      .describe("Measured harness iterations of each run (MIN_BENCH_ITRS); every iteration is one sample."),
    max_slowdown: z
      .number()
      .min(1, msg("must be at least 1 (1 = no slowdown allowed)"))
      .default(1.1)
      .describe("Largest median slowdown against 1 worker alone that a recommended worker count may show."),
    max_cv: z
      .number()
      .min(0)
      .default(0.05)
      .describe("Largest coefficient of variation (stddev / mean) a recommended worker count may show."),
    timeout_seconds: z
      .number()
      .int()
      .min(30)
      .max(86400)
      .default(1800)
      .describe("How long one layout of one benchmark may run on the instance."),
  })
  .default({
    benchmarks: ["fib"],
    repetitions: 5,
    warmup_iterations: 1,
    iterations: 5,
    max_slowdown: 1.1,
    max_cv: 0.05,
    timeout_seconds: 1800,
  })
  .describe("`imgtool calibrate`: what it measures and the thresholds of its recommendation.");

export type CalibrationConfig = z.output<typeof CalibrationSchema>;

/**
 * Workers of a role whose count is fixed by config (the orchestrator's: the schema allows `calibrated` for task
 * runners only).
 */
export function fixedWorkers(w: "auto" | number | typeof CALIBRATED): "auto" | number {
  if (w === CALIBRATED)
    throw new Error("workers_per_instance: calibrated is resolved before the launch plans");
  return w;
}
